#!/usr/bin/env bash
# make lint's analyzers, pinned in devtools/lab/tools.go (lab.GoTools) and
# built into the tool cache the first time: staticcheck over every package,
# tests included; gosec over the product, every package but devtools/ and
# e2e/ (tooling that starts processes and reads files by design, and never
# ships: the product imports neither). Both run side by side; any finding
# fails. A suppression stands on the line it excuses, with its reason:
# `//lint:ignore CHECK reason` for staticcheck, `// #nosec GNNN -- reason`
# for gosec (which refuses one without a rule id or a reason).
# ORDERFLOW_DEV_BIN: an orderflow-dev already built (make test's).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=${ORDERFLOW_DEV_BIN:-}
if [ -z "$dev" ]; then
  dev=bin/orderflow-dev
  go build -trimpath -o "$dev" ./devtools/cmd/orderflow-dev
fi
staticcheck=$("$dev" lab tool staticcheck)
gosec=$("$dev" lab tool gosec)
out=$(mktemp -d)
# Stopped (make test's clean-up), it stops its analyzers.
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
trap 'exit 143' TERM INT
"$staticcheck" ./... >"$out/staticcheck" 2>&1 &
sc=$!
"$gosec" -quiet -fmt text -nosec-require-rules -nosec-require-justification \
  -exclude-dir=devtools -exclude-dir=e2e ./... >"$out/gosec" 2>&1 &
gs=$!
rc=0
if wait "$sc"; then echo "staticcheck: no findings"; else cat "$out/staticcheck"; echo "staticcheck: failed" >&2; rc=1; fi
if wait "$gs"; then echo "gosec: no findings"; else cat "$out/gosec"; echo "gosec: failed" >&2; rc=1; fi
exit $rc
