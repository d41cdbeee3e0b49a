#!/usr/bin/env bash
# make bench: a fresh stack on ports of its own (the same script as make run),
# then `orderflow bench` against it, then the stack is stopped.
#   BENCH_ARGS   extra flags for orderflow bench (e.g. "--preload 100000")
#   BENCH_KEEP=1 leave the stack running afterwards
source "$(dirname "$0")/lib.sh"

export STACK_DATA_DIR="$ROOT/.data/bench"
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_bench?sslmode=disable}"
export REDIS_URL="redis://127.0.0.1:6382/0"
export TEMPORAL_PORT=7263 TEMPORAL_UI_PORT=8263 TEMPORAL_ADDRESS=127.0.0.1:7263 API_ADDR=127.0.0.1:8092
export LOG_LEVEL="${LOG_LEVEL:-warn}"
# As make run does; the baseline mirrors it (orderflow bench --baseline-eager).
export API_EMBED_WORKER="${API_EMBED_WORKER:-true}"

rm -rf "$STACK_DATA_DIR"
[ -n "${BENCH_KEEP:-}" ] || trap '"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true' EXIT

STATE_DIR="$STACK_DATA_DIR/run"; mkdir -p "$STATE_DIR"
start_postgres "$DATABASE_URL"
recreate_database "$DATABASE_URL"
stop_started
"$ROOT/scripts/stack.sh" up

cd "$ROOT"
# shellcheck disable=SC2086
API_URL="http://$API_ADDR" "$ROOT/bin/orderflow" bench ${BENCH_ARGS:-} "$@"
