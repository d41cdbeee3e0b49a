#!/usr/bin/env bash
# make test: installs and starts what the suite needs on ports of its own
# (PostgreSQL database orderflow_test, Redis :6380, an in-memory Temporal dev
# server :7243 with its Web UI on :8243, stripe-mock :12111, and chromium with
# playwright-core for the UI's browser test), runs every Go test against them,
# then scripts/smoke.sh (the stack started as `make run` starts it), and stops
# what it started.
source "$(dirname "$0")/lib.sh"

STATE_DIR="$ROOT/.data/test-run"
mkdir -p "$STATE_DIR"
trap stop_started EXIT

export ORDERFLOW_TEST_DATABASE_URL="${ORDERFLOW_TEST_DATABASE_URL:-postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_test?sslmode=disable}"
export ORDERFLOW_TEST_REDIS_URL="${ORDERFLOW_TEST_REDIS_URL:-redis://127.0.0.1:6380/0}"
TEST_TEMPORAL_PORT="${TEST_TEMPORAL_PORT:-7243}"
export ORDERFLOW_TEST_TEMPORAL_ADDRESS="127.0.0.1:$TEST_TEMPORAL_PORT"
TEST_TEMPORAL_UI_PORT="${TEST_TEMPORAL_UI_PORT:-8243}"
export ORDERFLOW_TEST_TEMPORAL_UI_URL="http://127.0.0.1:$TEST_TEMPORAL_UI_PORT"
# The browser test's screenshots go to $STATE_DIR/ui/.
export ORDERFLOW_TEST_OUTPUT_DIR="$STATE_DIR"
export ORDERFLOW_TEST_TEMPORAL_CLI
ORDERFLOW_TEST_TEMPORAL_CLI="$(temporal_bin)"
TEST_STRIPE_MOCK_PORT="${TEST_STRIPE_MOCK_PORT:-12111}"
export ORDERFLOW_TEST_STRIPE_MOCK_URL="http://127.0.0.1:$TEST_STRIPE_MOCK_PORT"

# The key the tests' workers, and the processes they start, encrypt e-mails
# with: fresh per run, like the database.
export PII_KEYS="${PII_KEYS:-test-$$:$(new_auth_secret)}"

start_postgres "$ORDERFLOW_TEST_DATABASE_URL"
recreate_database "$ORDERFLOW_TEST_DATABASE_URL"
start_redis "$ORDERFLOW_TEST_REDIS_URL"
start_temporal "$TEST_TEMPORAL_PORT" "$TEST_TEMPORAL_UI_PORT" ""
wait_for 60 "the Temporal Web UI at $ORDERFLOW_TEST_TEMPORAL_UI_URL (a server already on :$TEST_TEMPORAL_PORT may run headless)" \
  curl -fsS -o /dev/null "$ORDERFLOW_TEST_TEMPORAL_UI_URL/"
ensure_ui_test
start_stripe_mock "$TEST_STRIPE_MOCK_PORT"

check_alerts

log "go vet"
(cd "$ROOT" && go vet ./...)
log "workflowcheck"
(cd "$ROOT" && "$(workflowcheck_bin)" ./...)
# Tests that kill and restart provider processes run this binary.
export ORDERFLOW_TEST_BIN="$STATE_DIR/orderflow"
export ORDERFLOW_TEST_DEV_BIN="$STATE_DIR/orderflow-dev"
(cd "$ROOT" && go build -trimpath -o "$ORDERFLOW_TEST_BIN" ./cmd/orderflow && go build -trimpath -o "$ORDERFLOW_TEST_DEV_BIN" ./devtools/cmd/orderflow-dev)
log "vulncheck"; (cd "$ROOT" && devtools/vulncheck.sh)
log "go test"
cd "$ROOT"
rm -rf "$STATE_DIR/ui"
set +e
go test -count=1 -timeout 20m "$@" ${TEST_PKGS:-./...} 2>&1 | tee "$STATE_DIR/go-test.log"
status=${PIPESTATUS[0]}
set -e
if [ -f "$STATE_DIR/ui/confirmed-order.png" ]; then log "Web UI screenshot: $STATE_DIR/ui/confirmed-order.png"; fi
if [ -z "${TEST_PKGS:-}" ]; then
  log "smoke: the stack as make run starts it, on ports of its own"
  "$ROOT/scripts/smoke.sh" || status=1
  log "chaos: a short run (every fault kind at least once), then the invariants"
  CHAOS_DURATION="${CHAOS_DURATION:-150s}" CHAOS_RATE="${CHAOS_RATE:-8}" "$ROOT/scripts/chaos.sh" || status=1
fi
exit "$status"
