#!/usr/bin/env bash
# The local orderflow stack: PostgreSQL, Redis, the Temporal dev server (file
# persistence under .data/, Web UI on :8233), migrations, the demo catalog,
# two simulated payment providers (paysim-a :8090, paysim-b :8093; ports from
# PAYSIM_A_PORT, PAYSIM_B_PORT), one worker and the gateway.
#
#   scripts/stack.sh run    everything in the foreground; Ctrl-C stops what it started
#   scripts/stack.sh up     the same in the background, for scripts
#   scripts/stack.sh down   stop what `up` started
#   scripts/stack.sh kill|start worker|temporal|redis, restart postgres
#                           one process of a stack that is up (the chaos run's faults)
source "$(dirname "$0")/lib.sh"

DATA_DIR="${STACK_DATA_DIR:-$ROOT/.data}"
STATE_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
mkdir -p "$STATE_DIR" "$LOG_DIR"
# Development tokens are HS256 with this secret, made once per data dir.
ensure_auth_secret "$DATA_DIR/auth-hs256.secret"
# Stored e-mails are encrypted with this key, made once per data dir.
ensure_pii_keys "$DATA_DIR/pii.keys"

export DATABASE_URL="${DATABASE_URL:-postgres://orderflow:orderflow@127.0.0.1:5432/orderflow?sslmode=disable}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
export API_ADDR="${API_ADDR:-:8080}"
# Payloads in Temporal are sealed (internal/pii); the Web UI decodes them
# through the gateway's codec server, for an operator signed in there.
export TEMPORAL_UI_CODEC_ENDPOINT="${TEMPORAL_UI_CODEC_ENDPOINT:-http://127.0.0.1:${API_ADDR##*:}/codec}"
export CODEC_CORS_ORIGINS="${CODEC_CORS_ORIGINS:-http://127.0.0.1:$TEMPORAL_UI_PORT,http://localhost:$TEMPORAL_UI_PORT}"
# The gateway runs an order worker too, so it can start sagas eagerly
# (docs/performance.md); the separate worker takes whatever it does not.
export API_EMBED_WORKER="${API_EMBED_WORKER:-true}"
PAYSIM_A_PORT="${PAYSIM_A_PORT:-8090}"
PAYSIM_B_PORT="${PAYSIM_B_PORT:-8093}"
# The gateway's embedded worker and the worker charge through these, in
# failover order.
export PAYMENT_PROVIDERS="${PAYMENT_PROVIDERS:-paysim-a=paysim:http://127.0.0.1:$PAYSIM_A_PORT,paysim-b=paysim:http://127.0.0.1:$PAYSIM_B_PORT}"
BIN="$ROOT/bin/orderflow"
DEV_BIN="$ROOT/bin/orderflow-dev"

start_app() { # start_app NAME ARGS...: runs bin/orderflow ARGS in its own process group
  local name=$1; shift
  start_detached "$STATE_DIR/proc-$name.pid" "$LOG_DIR/$name.log" "$BIN" "$@"
}

start_paysim() { # start_paysim NAME PORT: a simulated payment provider on 127.0.0.1:PORT
  local name=$1 port=$2
  start_detached "$STATE_DIR/proc-$name.pid" "$LOG_DIR/$name.log" \
    env PAYSIM_NAME="$name" PAYSIM_ADDR="127.0.0.1:$port" "$DEV_BIN" paysim
  wait_for 30 "$name (see $LOG_DIR/$name.log)" curl -fsS "http://127.0.0.1:$port/health"
}

up() {
  log "building bin/orderflow and bin/orderflow-dev"
  (cd "$ROOT" && go build -trimpath -o "$BIN" ./cmd/orderflow && go build -trimpath -o "$DEV_BIN" ./devtools/cmd/orderflow-dev)
  start_postgres "$DATABASE_URL"
  start_redis "$REDIS_URL"
  start_temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$DATA_DIR/temporal.db"
  "$BIN" migrate
  "$DEV_BIN" seed
  start_paysim paysim-a "$PAYSIM_A_PORT"
  start_paysim paysim-b "$PAYSIM_B_PORT"
  start_app worker worker
  start_app api api
  wait_for 30 "the gateway (see $LOG_DIR/api.log)" curl -fsS "http://127.0.0.1:${API_ADDR##*:}/health/ready"
  local tokens="(AUTH_JWKS_URL is set: tokens come from your identity provider)"
  if [ -n "${AUTH_HS256_SECRET:-}" ]; then
    # A customer's and an operator's token for the walk-through (README),
    # also in $DATA_DIR/tokens.env for scripts: source it.
    (umask 077 && {
      echo "export CUSTOMER_TOKEN=$("$BIN" token --sub c-demo --role customer --ttl 12h)"
      echo "export OPERATOR_TOKEN=$("$BIN" token --sub ops-demo --role operator --ttl 12h)"
    } >"$DATA_DIR/tokens.env")
    tokens="$(sed 's/^/                   /' "$DATA_DIR/tokens.env")"
  fi
  local secret_ref="<the stack's secret>"
  [ -s "$DATA_DIR/auth-hs256.secret" ] && secret_ref="\$(cat $DATA_DIR/auth-hs256.secret)"
  cat <<MSG

  orderflow is up
    gateway        http://127.0.0.1:${API_ADDR##*:}   (try: curl -H "Authorization: Bearer \$CUSTOMER_TOKEN" http://127.0.0.1:${API_ADDR##*:}/v1/products)
    tokens         customer c-demo and operator ops-demo, valid 12 h (or: source $DATA_DIR/tokens.env); more with
                   AUTH_HS256_SECRET=$secret_ref bin/orderflow token --sub <id> --role <role>
$tokens
    Temporal UI    http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/default/workflows
                   (payloads are encrypted: to read them, sign in with the operator token at
                   $TEMPORAL_UI_CODEC_ENDPOINT/session, then in the UI's Codec Server settings
                   use your browser's setting with that endpoint and include cross-origin credentials)
    Temporal gRPC  $TEMPORAL_ADDRESS
    payments       paysim-a http://127.0.0.1:$PAYSIM_A_PORT, paysim-b http://127.0.0.1:$PAYSIM_B_PORT
                   (faults: curl -X PUT http://127.0.0.1:$PAYSIM_A_PORT/admin/faults -d '{"outage":true}')
    PostgreSQL     ${DATABASE_URL%%\?*}
    Redis          $REDIS_URL
    logs           $LOG_DIR/ (gateway, worker, paysim-a, paysim-b), $STATE_DIR/temporal.log

MSG
}

# kill_one NAME: SIGKILL one of the stack's processes, as a crash would.
kill_one() {
  local f
  case "$1" in
    worker) f="$STATE_DIR/proc-worker.pid" ;;
    temporal) f="$STATE_DIR/temporal.pid" ;;
    redis) [ -f "$STATE_DIR/started-redis" ] || die "Redis was not started by this stack"; f="$STATE_DIR/redis.pid" ;;
    *) die "kill: unknown process $1" ;;
  esac
  [ -f "$f" ] || die "kill $1: no pid file $f"
  local pid; pid=$(cat "$f")
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$f"
}

# start_one NAME: start again a process kill_one stopped, as `up` started it.
start_one() {
  case "$1" in
    worker) start_app worker worker ;;
    temporal) start_temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$DATA_DIR/temporal.db" ;;
    redis) start_redis "$REDIS_URL" ;;
    *) die "start: unknown process $1" ;;
  esac
}

case "${1:-run}" in
  kill)
    kill_one "${2:-}"
    ;;
  start)
    start_one "${2:-}"
    ;;
  restart)
    [ "${2:-}" = postgres ] || die "restart: only postgres"
    ver=$(basename "$(dirname "$(pg_bindir)")")
    pg_ctlcluster "$ver" main restart -m fast
    wait_for 30 PostgreSQL psql "$DATABASE_URL" -Atqc 'select 1'
    ;;
  up)
    up
    ;;
  down)
    stop_started
    log "stopped"
    ;;
  run)
    # Ctrl-C may also have closed whatever reads our output: ignore SIGPIPE
    # and errors so the clean-up always runs to the end.
    cleanup() { trap '' PIPE INT TERM; set +e; log "stopping"; stop_started; }
    trap 'cleanup; exit 0' INT TERM
    trap cleanup EXIT
    up
    log "Ctrl-C stops everything started here; following the gateway and worker logs"
    tail -n 0 -F "$LOG_DIR/api.log" "$LOG_DIR/worker.log" &
    wait
    ;;
  *)
    die "usage: $0 run|up|down|kill NAME|start NAME|restart postgres"
    ;;
esac
