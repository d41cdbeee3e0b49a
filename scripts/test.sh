#!/usr/bin/env bash
# make test: installs what the suite needs (devtools/install.sh, and
# playwright-core for the Web UI's browser test), asks the lab for the test
# servers (orderflow-dev lab up --profile test: the test database emptied,
# Redis, an in-memory Temporal dev server with its Web UI, stripe-mock; on
# free ports unless ORDERFLOW_TEST_REDIS_URL, TEST_TEMPORAL_PORT,
# TEST_TEMPORAL_UI_PORT, TEST_STRIPE_MOCK_PORT or LAB_PORTS say), runs the
# checks and every Go test against them, then the smoke test, a short
# chaos run, the ha chaos run, the region drill and the restore drill on stacks the lab starts for each (side by
# side), and stops what it started. TEST_RESTORE_DRILL=1 runs the restore
# drill with TEST_PKGS too. (The restore drill on the ha profile, make
# restore-drill-ha, takes minutes: not here.)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { printf '\033[1;34m==>\033[0m [%ss] %s\n' "$SECONDS" "$*" >&2 || true; }

devtools/install.sh tools postgres redis promtool chromium pgbackrest haproxy
if ! cmp -s e2e/ui/package-lock.json e2e/ui/node_modules/.orderflow-lock; then
  log "npm ci in e2e/ui (playwright-core, no browser download)"
  (cd e2e/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >&2
  cp e2e/ui/package-lock.json e2e/ui/node_modules/.orderflow-lock
fi

DATA="$ROOT/.data/test-run"
mkdir -p "$DATA"
# One build of each binary for the suite, the smoke test and the chaos run.
export ORDERFLOW_TEST_BIN="$DATA/orderflow" ORDERFLOW_TEST_DEV_BIN="$DATA/orderflow-dev"
export ORDERFLOW_BIN="$ORDERFLOW_TEST_BIN" ORDERFLOW_DEV_BIN="$ORDERFLOW_TEST_DEV_BIN"
go build -trimpath -o "$ORDERFLOW_BIN" ./cmd/orderflow
go build -trimpath -o "$ORDERFLOW_DEV_BIN" ./devtools/cmd/orderflow-dev
lab() { "$ORDERFLOW_DEV_BIN" lab "$@"; }
# The stages after go test need none of the test servers but PostgreSQL on
# 5432, which the smoke and bench stacks share: it stays up (stopped at the
# end, if this script started it), so no stage's end stops it under another.
stop_test_servers_but_postgres() {
  for node in redis temporal stripe-mock; do lab stop --profile test --data "$DATA" "$node" 2>/dev/null || true; done
}
# On the way out (an error included): let a start in progress finish, stop
# a vulncheck, lint or deploy-check still running, stop the test servers;
# the exit status stays the script's.
servers="" vulncheck="" overload="" lint="" deploycheck=""
cleanup() {
  set +e
  [ -z "$servers" ] || wait "$servers" 2>/dev/null
  # The overload check's lab stops its own stack when its run ends.
  [ -z "$overload" ] || wait "$overload" 2>/dev/null
  [ -z "$vulncheck" ] || kill "$vulncheck" 2>/dev/null
  [ -z "$deploycheck" ] || kill "$deploycheck" 2>/dev/null
  # The restore drill stops its stack itself on the way out (SIGTERM ends it cleanly).
  [ -z "${drill:-}" ] || { kill "$drill" 2>/dev/null; wait "$drill" 2>/dev/null; }
  [ -z "$lint" ] || kill "$lint" 2>/dev/null
  lab down --profile test --data "$DATA" 2>/dev/null
  return 0
}
trap cleanup EXIT
env_file="$DATA/env"
# The servers come up while the static checks run.
lab up --profile test --data "$DATA" --print-env >"$env_file" &
servers=$!
# vulncheck (a minute or two of analysis) runs beside the checks and tests; its
# verdict is read at the end.
log "vulncheck (beside the checks and tests; output in $DATA/vulncheck.log)"
devtools/vulncheck.sh >"$DATA/vulncheck.log" 2>&1 &
vulncheck=$!
# staticcheck and gosec (devtools/lint.sh, minutes of analysis) likewise.
log "staticcheck and gosec (beside the checks and tests; output in $DATA/lint.log)"
devtools/lint.sh >"$DATA/lint.log" 2>&1 &
lint=$!
# make deploy-check (the Helm chart and compose.yaml, deploy/check's own
# module) needs no server either; its verdict is read at the end too.
log "deploy-check (beside the checks and tests; output in $DATA/deploy-check.log)"
(cd deploy/check && go test -count=1 ./...) >"$DATA/deploy-check.log" 2>&1 &
deploycheck=$!
# The browser test's screenshots go to $DATA/ui/. The key the tests'
# workers, and the processes they start, encrypt e-mails with: fresh per
# run, like the database.
export ORDERFLOW_TEST_OUTPUT_DIR="$DATA"
export PII_KEYS="${PII_KEYS:-test-$$:$(head -c 32 /dev/urandom | base64 | tr -d '\n')}"

log "promtool: check and unit-test deploy/observability's alert rules"
(cd deploy/observability && promtool check rules alerts.yml && promtool check config prometheus.yml &&
  promtool test rules alerts_test.yml)
log "go vet"; go vet ./...
log "workflowcheck"; "$(lab tool workflowcheck)" ./...
wait "$servers" || { log "the test servers did not come up"; exit 1; }
# shellcheck disable=SC1090
source "$env_file"
log "go test"
rm -rf "$DATA/ui"
set +e
go test -count=1 -timeout 20m "$@" ${TEST_PKGS:-./...} 2>&1 | tee "$DATA/go-test.log"
status=${PIPESTATUS[0]}
set -e
if [ -f "$DATA/ui/confirmed-order.png" ]; then log "Web UI screenshot: $DATA/ui/confirmed-order.png"; fi
drill=""
if [ -z "${TEST_PKGS:-}" ] || [ "${TEST_RESTORE_DRILL:-}" = 1 ]; then
  # The restore drill: a private PostgreSQL (orderflow's data and Temporal's
  # persistence) archived by pgBackRest, orders, backups, the server lost,
  # a restore to a time T checked; on ports the kernel gives out.
  log "restore drill (beside the rest; output in $DATA/restore-drill.log)"
  "$ORDERFLOW_DEV_BIN" restore-drill --data "$ROOT/.data/restore-drill" >"$DATA/restore-drill.log" 2>&1 &
  drill=$!
fi
# The overload check: 30 s of orders at 3x what this 2-core machine
# sustains (OVERLOAD_CAPACITY, 100/s: make bench measures 55-100), on a bench
# stack of its own, beside the smoke test and the chaos run. It asserts no
# timing: every accepted order ended, none was charged twice, and every
# refusal carried Retry-After. TEST_OVERLOAD=1 runs it with TEST_PKGS too.
if [ -z "${TEST_PKGS:-}" ] || [ "${TEST_OVERLOAD:-}" = 1 ]; then
  stop_test_servers_but_postgres
  log "overload: 30 s at 3x ${OVERLOAD_CAPACITY:-100} orders/s, no order lost or charged twice, Retry-After on every refusal (output in $DATA/overload.log)"
  lab with --profile bench --data "$DATA/overload" -- "$ORDERFLOW_DEV_BIN" bench --phase overload --check \
    --capacity "${OVERLOAD_CAPACITY:-100}" --factors 3 --retry-factors "" --overload-step 30s \
    --results "$DATA/overload-results" >"$DATA/overload.log" 2>&1 &
  overload=$!
fi
if [ -z "${TEST_PKGS:-}" ]; then
  # None uses the test servers but PostgreSQL: stop the others first.
  stop_test_servers_but_postgres
  # Side by side, each on a stack and ports of its own (the lab's profiles).
  log "smoke: the stack as make run starts it, on ports of its own (output in $DATA/smoke.log)"
  "$ORDERFLOW_DEV_BIN" smoke >"$DATA/smoke.log" 2>&1 &
  smoke=$!
  log "chaos: a short run (every fault kind at least once, every recovery path reached), then the invariants"
  # Its stack runs a binary with the chaos hooks (a step after the charge
  # fails for good for the orders the run marks); the suite's is the product's.
  go build -trimpath -tags chaoshooks -o "$DATA/orderflow-chaoshooks" ./cmd/orderflow
  ORDERFLOW_BIN="$DATA/orderflow-chaoshooks" lab with --profile chaos -- "$ORDERFLOW_DEV_BIN" chaos --duration "${CHAOS_DURATION:-150s}" --rate "${CHAOS_RATE:-8}" || status=1
  wait "$smoke" || status=1
  grep '^smoke:' "$DATA/smoke.log" || tail -50 "$DATA/smoke.log"
  # The HA topology after both (its sixteen hosts would starve them on a
  # small machine): one host of each kind lost, killed or cut off, then the
  # invariants and every loss recovered. Its hosts live on a network of
  # their own (CHAOS_HA_NETWORK), its balancers on the lab's free ports.
  log "chaos-ha: the ha profile's hosts lost one at a time, one of each kind, then the invariants (output in $DATA/chaos-ha.log)"
  if [ "$(id -u)" != 0 ]; then
    log "chaos-ha: not run: its hosts are network namespaces, which only root makes"; status=1
  elif LAB_NETWORK="${CHAOS_HA_NETWORK:-oft:10.203.0.0/16}" lab with --profile ha --ports "${CHAOS_HA_PORTS:-free}" --data "$DATA/ha" -- \
    "$ORDERFLOW_DEV_BIN" chaos --ha --rounds 1 --duration "${CHAOS_HA_DURATION:-60s}" --rate "${CHAOS_HA_RATE:-3}" >"$DATA/chaos-ha.log" 2>&1; then
    sed -n '/^host lost/,$p' "$DATA/chaos-ha.log"
  else
    tail -80 "$DATA/chaos-ha.log"; log "chaos-ha: failed"; status=1
  fi
fi
# The region drill after chaos-ha (both profiles are many hosts): the
# regions profile on a network of its own (DRILL_TEST_NETWORK), east cut
# off under a short load, failed over by `orderflow failover --watch` and
# back; RTO, orders lost, double charges and the invariants of both
# regions (docs/regions.md). `lab with` stops the profile when it ends.
# TEST_DRILL=1 runs it with TEST_PKGS too.
if [ -z "${TEST_PKGS:-}" ] || [ "${TEST_DRILL:-}" = 1 ]; then
  log "drill: east lost under load, failed over and back, then the objectives (output in $DATA/drill.log)"
  if [ "$(id -u)" != 0 ]; then
    log "drill: not run: its hosts are network namespaces, which only root makes"; status=1
  elif LAB_NETWORK="${DRILL_TEST_NETWORK:-ofw:10.208.0.0/16}" lab with --profile regions --ports "${DRILL_TEST_PORTS:-free}" --data "$DATA/drill" -- \
    "$ORDERFLOW_DEV_BIN" drill --rate "${DRILL_TEST_RATE:-2}" --before 10s --hold 5s --after 5s --quiesce 90s --results "$DATA/drill-results" >"$DATA/drill.log" 2>&1; then
    sed -n '/^region drill/,$p' "$DATA/drill.log"
  else
    tail -100 "$DATA/drill.log"; log "drill: failed"; status=1
  fi
fi
if [ -z "${TEST_PKGS:-}" ]; then
  log "done"
fi
if [ -n "$drill" ]; then
  if wait "$drill"; then grep -A30 '^restore drill' "$DATA/restore-drill.log"; log "restore drill: passed"
  else tail -60 "$DATA/restore-drill.log"; log "restore drill: failed"; status=1; fi
  drill=""
fi
if [ -n "$overload" ]; then
  if wait "$overload"; then log "overload: passed"; else status=1; log "overload: failed"; fi
  grep -A12 '^overload:' "$DATA/overload.log" || tail -50 "$DATA/overload.log"
fi
if wait "$vulncheck"; then log "vulncheck: passed"; else cat "$DATA/vulncheck.log"; log "vulncheck: failed"; status=1; fi
if wait "$lint"; then log "lint: staticcheck and gosec passed"; else cat "$DATA/lint.log"; log "lint: failed"; status=1; fi
if wait "$deploycheck"; then log "deploy-check: passed"; else cat "$DATA/deploy-check.log"; log "deploy-check: failed"; status=1; fi
exit "$status"
