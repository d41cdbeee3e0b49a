#!/usr/bin/env bash
# make sbom: a CycloneDX (1.6, JSON) software bill of materials of the
# product binary, read from the module information Go embeds in it: every
# module linked into bin/orderflow with its version and checksum, and the Go
# standard library of the toolchain that built it; the main component's
# version is the commit (git describe --always --dirty). Written to
# SBOM_OUT (default bin/orderflow.cdx.json) beside the binary it describes.
# cyclonedx-gomod is pinned here and built into the tool cache once per Go
# version.
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLONEDX_GOMOD_VERSION=v1.10.0
CACHE=${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}
out=${SBOM_OUT:-bin/orderflow.cdx.json}
gover=$(go env GOVERSION)
dir="$CACHE/bin/cyclonedx-gomod-${CYCLONEDX_GOMOD_VERSION#v}-$gover"
[ -x "$dir/cyclonedx-gomod" ] || GOTOOLCHAIN="$gover" GOBIN="$dir" \
  go install "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$CYCLONEDX_GOMOD_VERSION"
go build -trimpath -o bin/orderflow ./cmd/orderflow
mkdir -p "$(dirname "$out")"
version=$(git describe --always --dirty 2>/dev/null || echo devel)
"$dir/cyclonedx-gomod" bin -json -std -version "$version" -output "$out.tmp" bin/orderflow
# A bill that names no Temporal SDK is not the product's.
jq -e '.bomFormat == "CycloneDX" and any(.components[]; .name == "go.temporal.io/sdk")' "$out.tmp" >/dev/null ||
  { echo "sbom: $out.tmp is not a CycloneDX bill of orderflow's modules" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "sbom: $(jq '.components | length' "$out") components in $out"
