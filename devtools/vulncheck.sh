#!/usr/bin/env bash
# make vulncheck: govulncheck against an offline database indexed from the
# pinned golang.org/x/vulndb module. Fails on any reachable finding not in
# devtools/vulncheck-exceptions.txt, and on any exception no longer reported.
# Refresh the pins: VULNDB_VERSION=$(curl -s https://proxy.golang.org/golang.org/x/vulndb/@v/list | sort | tail -1)
set -euo pipefail
cd "$(dirname "$0")/.."
VULN_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
CACHE=${ORDERFLOW_CACHE_DIR:-$HOME/.cache/orderflow}
devtools/install.sh tools
# The tools are built by the project's toolchain, one build per Go version.
gover=$(go env GOVERSION)
gv="$CACHE/bin/govulncheck-$VULN_VERSION-$gover"
ix="$CACHE/bin/indexdb-$VULNDB_VERSION"
db="$CACHE/vulndb/$VULNDB_VERSION"
[ -x "$gv/govulncheck" ] || GOTOOLCHAIN="$gover" GOBIN="$gv" go install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION"
[ -x "$ix/indexdb" ] || GOBIN="$ix" go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
if [ ! -f "$db/index/db.json" ]; then
  src=$(GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | jq -r .Dir)
  rm -rf "$db.tmp" && "$ix/indexdb" -vulns "$src/data/osv" -out "$db.tmp" && mv "$db.tmp" "$db"
fi
out=$(mktemp) && trap 'rm -f "$out"' EXIT
"$gv/govulncheck" -db "file://$db" -format json ./... > "$out"
found=$(jq -r 'select(.finding) | .finding | select(.trace[0].function) | .osv' "$out" | sort -u)
allowed=$(grep -v '^#' devtools/vulncheck-exceptions.txt | awk 'NF {print $1}' | sort -u)
today=$(date -u +%F); rc=0
for id in $found; do
  fixed=$(jq -r --arg id "$id" 'select(.finding.osv == $id) | .finding.fixed_version // empty' "$out" | head -1)
  if [ -n "$fixed" ]; then echo "vulncheck: $id is reachable and fixed in $fixed: upgrade" >&2; rc=1
  elif ! grep -qx "$id" <<<"$allowed"; then echo "vulncheck: $id is reachable, has no fix and no exception" >&2; rc=1; fi
done
while read -r id review _; do
  [ -z "$id" ] || [[ $id == \#* ]] && continue
  grep -qx "$id" <<<"$found" || { echo "vulncheck: exception $id is no longer reported: remove it" >&2; rc=1; }
  [[ $review > $today ]] || { echo "vulncheck: exception $id is past its review date $review" >&2; rc=1; }
done < devtools/vulncheck-exceptions.txt
echo "vulncheck: reachable findings: ${found:-none}" | tr '\n' ' '; echo
exit $rc
