#!/usr/bin/env bash
# make e2e-ha: every test of the e2e package against the ha profile
# (docs/ha.md): PostgreSQL through Patroni's primary (the multi-host DSN with
# target_session_attrs=read-write), Redis through its three Sentinels, Temporal
# through the balancer in front of the cluster's two frontends, the Web UI
# test against the cluster's UI server. The lab brings the profile up
# (`orderflow-dev lab with --profile ha`: root, network namespaces) on
# LAB_NETWORK (default oeh:10.204.0.0/16) and E2E_HA_PORTS (default free),
# this script runs `go test ./e2e/...` inside it, and the lab takes it down.
#
# The tests start their own gateways and workers (each on a region of its
# own), so the profile's are stopped first; their database is orderflow_e2e,
# made fresh on the Patroni cluster beside the profile's. stripe-mock (the
# Stripe adapter's tests) runs on a port the kernel gives out.
# Output in .data/e2e-ha/ (go-test.log); extra arguments go to go test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { printf '\033[1;34m==>\033[0m [%ss] %s\n' "$SECONDS" "$*" >&2 || true; }
DATA="$ROOT/.data/e2e-ha"

if [ "${1:-}" != --in-stack ]; then
  export E2E_HA_STARTED="$EPOCHSECONDS"
  if [ "$(id -u)" != 0 ]; then
    echo "e2e-ha: the ha profile's hosts are network namespaces, which only root makes" >&2; exit 1
  fi
  devtools/install.sh tools postgres redis sentinel patroni etcd haproxy chromium
  if ! cmp -s e2e/ui/package-lock.json e2e/ui/node_modules/.orderflow-lock; then
    log "npm ci in e2e/ui (playwright-core, no browser download)"
    (cd e2e/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >&2
    cp e2e/ui/package-lock.json e2e/ui/node_modules/.orderflow-lock
  fi
  mkdir -p "$DATA"
  export ORDERFLOW_TEST_BIN="$DATA/orderflow" ORDERFLOW_TEST_DEV_BIN="$DATA/orderflow-dev"
  export ORDERFLOW_BIN="$ORDERFLOW_TEST_BIN" ORDERFLOW_DEV_BIN="$ORDERFLOW_TEST_DEV_BIN"
  go build -trimpath -o "$ORDERFLOW_BIN" ./cmd/orderflow
  go build -trimpath -o "$ORDERFLOW_DEV_BIN" ./devtools/cmd/orderflow-dev
  export LAB_NETWORK="${LAB_NETWORK:-oeh:10.204.0.0/16}"
  log "the ha profile up on $LAB_NETWORK (output of the tests in $DATA/go-test.log)"
  exec "$ORDERFLOW_DEV_BIN" lab with --profile ha --ports "${E2E_HA_PORTS:-free}" --data "$DATA/ha" -- "$0" --in-stack "$@"
fi
shift

# Inside the stack: its environment is the profile's (DATABASE_URL,
# REDIS_SENTINELS, TEMPORAL_ADDRESS...; STACK_DATA_DIR names it).
log "the profile is up; stopping its own gateways and workers (the tests run theirs)"
for node in gateway-lb gateway-1 gateway-2 worker-1 worker-2; do
  "$ORDERFLOW_DEV_BIN" lab stop --profile ha --data "$STACK_DATA_DIR" "$node"
done

# The tests' database on the Patroni cluster, beside the profile's (the
# orderflow role may create databases): fresh for each run.
test_db_url="${DATABASE_URL/\/orderflow\?//orderflow_e2e?}"
[ "$test_db_url" != "$DATABASE_URL" ] || { echo "e2e-ha: cannot name the test database in $DATABASE_URL" >&2; exit 1; }
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c 'DROP DATABASE IF EXISTS orderflow_e2e' -c 'CREATE DATABASE orderflow_e2e'

# stripe-mock on a port the kernel gives out.
stripe_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$("$ORDERFLOW_DEV_BIN" lab tool stripe-mock)" -http-addr "127.0.0.1:$stripe_port" -https-addr 127.0.0.1: >"$DATA/stripe-mock.log" 2>&1 &
stripe=$!
trap 'kill "$stripe" 2>/dev/null; wait "$stripe" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS -u sk_test_123: "http://127.0.0.1:$stripe_port/v1/payment_intents/pi_123" >/dev/null 2>&1 && break
  sleep 0.1
done

export ORDERFLOW_TEST_DATABASE_URL="$test_db_url"
export ORDERFLOW_TEST_REDIS_URL="$REDIS_URL" ORDERFLOW_TEST_REDIS_SENTINELS="$REDIS_SENTINELS" ORDERFLOW_TEST_REDIS_MASTER_NAME="$REDIS_MASTER_NAME"
export ORDERFLOW_TEST_TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS"
# The Web UI (the cluster's UI server) on the root namespace's temporal-ui
# port, the first origin the profile lets it call codecs from.
export ORDERFLOW_TEST_TEMPORAL_UI_URL="${CODEC_CORS_ORIGINS%%,*}"
ORDERFLOW_TEST_TEMPORAL_CLI="$("$ORDERFLOW_DEV_BIN" lab tool temporal)"
export ORDERFLOW_TEST_TEMPORAL_CLI
export ORDERFLOW_TEST_STRIPE_MOCK_URL="http://127.0.0.1:$stripe_port"
export ORDERFLOW_TEST_OUTPUT_DIR="$DATA"
export PII_KEYS="test-$$:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
env | grep -E '^ORDERFLOW_TEST_(DATABASE|REDIS|TEMPORAL_ADDRESS|TEMPORAL_UI)' | sed 's/^/    /' >&2

# The tests see only what make test gives them: the profile's own settings
# (API_EMBED_WORKER, PAYMENT_PROVIDERS...) would reach the processes they
# start.
clean_env=()
for k in PATH HOME USER LANG TERM TMPDIR CI GOTOOLCHAIN GOPATH GOCACHE GOMODCACHE GOFLAGS GOPROXY PII_KEYS; do
  [ -z "${!k+x}" ] || clean_env+=("$k=${!k}")
done
while IFS= read -r kv; do clean_env+=("$kv"); done < <(env | grep '^ORDERFLOW_TEST_')

log "go test ./e2e/... against the ha profile"
start=$SECONDS
set +e
env -i "${clean_env[@]}" go test -count=1 -timeout 30m -v "$@" ./e2e/... >"$DATA/go-test.log" 2>&1
status=$?
set -e
pass=$(grep -c '^--- PASS' "$DATA/go-test.log" || true)
fail=$(grep -c '^--- FAIL' "$DATA/go-test.log" || true)
skip=$(grep -c '^--- SKIP' "$DATA/go-test.log" || true)
grep -E '^(--- FAIL|--- SKIP|FAIL|ok )' "$DATA/go-test.log" || true
log "e2e-ha: $pass passed, $fail failed, $skip skipped; go test took $((SECONDS - start)) s, $((EPOCHSECONDS - E2E_HA_STARTED)) s from the start (build, install, the profile up; its stop follows)"
exit "$status"
