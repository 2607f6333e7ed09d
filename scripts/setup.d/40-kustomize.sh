#!/usr/bin/env bash
# kustomize, to render deploy/k8s/ overlays in tests/deploy (built from the Go module proxy,
# pinned; nothing is downloaded at test time). Idempotent: returns at once when present.
set -euo pipefail
TOOLS="${AUDITVEIL_TOOLS:-/opt/auditveil/tools}"
KUSTOMIZE_VERSION="5.7.1"
target="$TOOLS/bin/kustomize-$KUSTOMIZE_VERSION"
[[ -x "$target" ]] && exit 0
printf '[setup] building kustomize v%s with go install\n' "$KUSTOMIZE_VERSION" >&2
mkdir -p "$TOOLS/bin"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION"
mv "$tmp/kustomize" "$target"
