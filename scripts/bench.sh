#!/usr/bin/env bash
# make bench: each measurement on a freshly started stack (the same script as
# make run, on ports of its own), because the dev server slows down as its
# SQLite files fill, and the phase that ran second would pay for the first:
#   1. the baseline, eager start (how the gateway starts sagas)
#   2. the baseline, standard start (through task matching)
#   3. the order path: step search, then the half-rate run, reported with both
# Writes bench/results/<timestamp>.json and .svg.
#   BENCH_ARGS    extra flags for every `orderflow-dev bench` phase (e.g. "--step 5s")
#   ORDERS_ARGS   extra flags for the order phase only (e.g. "--preload 100000")
#   BENCH_ONLY=orders  skip the baselines and report the ones the last run saved
source "$(dirname "$0")/lib.sh"

export STACK_DATA_DIR="$ROOT/.data/bench"
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_bench?sslmode=disable}"
export REDIS_URL="redis://127.0.0.1:6382/0"
export TEMPORAL_PORT=7263 TEMPORAL_UI_PORT=8263 TEMPORAL_ADDRESS=127.0.0.1:7263 API_ADDR=127.0.0.1:8092
export PAYSIM_A_PORT=8096 PAYSIM_B_PORT=8097
export WORKER_HEALTH_ADDR=127.0.0.1:8192
export LOG_LEVEL="${LOG_LEVEL:-warn}"
# The load comes from one address at 100+ orders/s plus their status polls:
# limits far above it, so the bench measures the stack, not the limiter
# (which stays on, as in make run).
export RATE_LIMIT_PER_IP="${RATE_LIMIT_PER_IP:-100000000}" RATE_LIMIT_PER_USER="${RATE_LIMIT_PER_USER:-100000000}"
# As make run does; the eager baseline mirrors it.
export API_EMBED_WORKER="${API_EMBED_WORKER:-true}"
export API_URL="http://$API_ADDR"
SAVED="$ROOT/.data/bench-baselines"
# The stack's development secret, which the load generator also mints its
# customers' tokens with.
export AUTH_HS256_SECRET; AUTH_HS256_SECRET="$(new_auth_secret)"
trap '"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true' EXIT

cd "$ROOT"
mkdir -p "$SAVED"
# shellcheck disable=SC2086
{
  if [ "${BENCH_ONLY:-}" != orders ]; then
    fresh_stack >/dev/null
    bin/orderflow-dev bench --phase baseline --baseline-eager=true --save-baseline "$SAVED/eager.json" ${BENCH_ARGS:-}
    fresh_stack >/dev/null
    bin/orderflow-dev bench --phase baseline --baseline-eager=false --save-baseline "$SAVED/standard.json" ${BENCH_ARGS:-}
  fi
  fresh_stack >/dev/null
  bin/orderflow-dev bench --phase orders --baselines "$SAVED/eager.json,$SAVED/standard.json" ${BENCH_ARGS:-} ${ORDERS_ARGS:-} "$@"
}
