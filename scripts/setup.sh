#!/usr/bin/env bash
# Install everything auditveil needs on a Debian machine, as root. Idempotent: a second run
# only checks stamps and returns in seconds.
#
#   * Debian packages: softhsm2 (the development HSM), opensc (pkcs11-tool), postgresql
#   * a virtualenv at $AUDITVEIL_VENV (default /opt/auditveil/venv) from requirements.lock,
#     with auditveil itself installed in editable mode from this checkout
#   * Beam's Prism runner built with `go install` (nothing is downloaded at run time)
#   * every scripts/setup.d/*.sh, in order (brokers, S3 server, …)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AUDITVEIL_VENV="${AUDITVEIL_VENV:-/opt/auditveil/venv}"
export AUDITVEIL_TOOLS="${AUDITVEIL_TOOLS:-/opt/auditveil/tools}"
BEAM_VERSION="2.77.0"
say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages --------------------------------------------------------------------------
APT_PACKAGES=(softhsm2 opensc postgresql python3-venv)
# The Kafka broker for the streaming tests runs on Java and is resolved with Maven.
command -v java >/dev/null || APT_PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || APT_PACKAGES+=(maven)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python virtualenv --------------------------------------------------------------------------
PY="${AUDITVEIL_PYTHON:-python3}"
lock_hash="$(sha256sum "$ROOT/requirements.lock" | cut -c1-16)"
stamp="$AUDITVEIL_VENV/.auditveil-lock-$lock_hash"
if [[ ! -x "$AUDITVEIL_VENV/bin/python" ]]; then
    say "creating virtualenv $AUDITVEIL_VENV"
    mkdir -p "$(dirname "$AUDITVEIL_VENV")"
    "$PY" -m venv "$AUDITVEIL_VENV"
fi
if [[ ! -f "$stamp" ]]; then
    say "installing Python packages from requirements.lock (first run takes a few minutes)"
    "$AUDITVEIL_VENV/bin/pip" install -q --upgrade pip wheel setuptools >/dev/null
    "$AUDITVEIL_VENV/bin/pip" install -q -r "$ROOT/requirements.lock"
    rm -f "$AUDITVEIL_VENV"/.auditveil-lock-*
    touch "$stamp"
fi
# Always point the editable install at this checkout (cheap; CI clones into a new folder).
if [[ ! -x "$AUDITVEIL_VENV/bin/auditveil" ]] || ! (cd / && "$AUDITVEIL_VENV/bin/python" - "$ROOT" <<'PYEOF') 2>/dev/null
import sys, pathlib, pipeline
sys.exit(0 if pathlib.Path(pipeline.__file__).resolve().parent.parent == pathlib.Path(sys.argv[1]).resolve() else 1)
PYEOF
then
    say "installing auditveil from $ROOT (editable)"
    "$AUDITVEIL_VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT" >/dev/null
fi

# --- Beam Prism runner (built from the Go module proxy, pinned to the Beam version) -------------
command -v go >/dev/null || { say "Go (1.22 or newer) is required to build Beam's Prism runner and MinIO"; exit 1; }
mkdir -p "$AUDITVEIL_TOOLS/bin"
if [[ ! -x "$AUDITVEIL_TOOLS/bin/prism-$BEAM_VERSION" ]]; then
    say "building Beam's Prism runner v$BEAM_VERSION with go install"
    GOBIN="$AUDITVEIL_TOOLS/bin" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION"
    mv "$AUDITVEIL_TOOLS/bin/prism" "$AUDITVEIL_TOOLS/bin/prism-$BEAM_VERSION"
fi

# --- Optional components (brokers, S3 server, …) -------------------------------------------------
for part in "$ROOT"/scripts/setup.d/*.sh; do
    [[ -e "$part" ]] || continue
    bash "$part"
done
say "ready"
