#!/usr/bin/env bash
# MinIO, the S3-compatible server for the storage tests and local use, built with `go install`.
#
# The version is pinned to a commit of github.com/minio/minio (Go pseudo-version); the Go
# module proxy serves its source with checksums from sum.golang.org, and the binary is built
# here: nothing is downloaded at run time. Measured on 2 cores: 3 min 21 s wall with Go caches
# partly warm from the Prism build; from empty caches 408 CPU-seconds (about 4 min on 2 idle cores;
# 12 min 44 s wall on a machine loaded 5x). The binary goes to
# $AUDITVEIL_TOOLS/bin/minio-<version>, with $AUDITVEIL_TOOLS/bin/minio pointing at it; the
# test fixture (tests/services/s3.py) uses it, or falls back to moto's server when it is absent.
#
# Idempotent: a second run sees the binary and returns at once.
# Skip with AUDITVEIL_SKIP_MINIO=1 (the tests then use moto_server from the virtualenv).
set -euo pipefail
AUDITVEIL_TOOLS="${AUDITVEIL_TOOLS:-/opt/auditveil/tools}"
MINIO_VERSION="${AUDITVEIL_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
BIN="$AUDITVEIL_TOOLS/bin/minio-$MINIO_VERSION"
say() { printf '[setup:s3] %s\n' "$*" >&2; }

if [[ "${AUDITVEIL_SKIP_MINIO:-0}" == "1" ]]; then
    say "skipping MinIO (AUDITVEIL_SKIP_MINIO=1); tests will use moto_server"
    exit 0
fi
mkdir -p "$AUDITVEIL_TOOLS/bin"
if [[ ! -x "$BIN" ]]; then
    command -v go >/dev/null || { say "go is required to build MinIO (or set AUDITVEIL_SKIP_MINIO=1)"; exit 1; }
    say "building MinIO $MINIO_VERSION with go install (a few minutes on first run)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    GOBIN="$work" GOFLAGS="${GOFLAGS:--buildvcs=false}" go install "github.com/minio/minio@$MINIO_VERSION"
    mv "$work/minio" "$BIN.partial"
    mv "$BIN.partial" "$BIN"
fi
ln -sfn "$(basename "$BIN")" "$AUDITVEIL_TOOLS/bin/minio"
