#!/usr/bin/env bash
# make chaos: the stack as `make run` starts it (its own ports and data),
# orders driven over HTTP while processes are killed and restarted and the
# payment providers fail, then every invariant checked over the final state.
# Exits non-zero when one does not hold. Writes chaos/results/<timestamp>.json.
#   CHAOS_DURATION  load and faults (default 10m; make test runs 150s)
#   CHAOS_RATE      orders per second (default 10)
#   CHAOS_ARGS      extra flags for `orderflow-dev chaos` (see orderflow-dev chaos -h)
source "$(dirname "$0")/lib.sh"

export STACK_DATA_DIR="$ROOT/.data/chaos"
export DATABASE_URL="postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_chaos?sslmode=disable"
export REDIS_URL="redis://127.0.0.1:6384/0"
export TEMPORAL_PORT=7283 TEMPORAL_UI_PORT=8283 TEMPORAL_ADDRESS=127.0.0.1:7283 API_ADDR=127.0.0.1:8089
export PAYSIM_A_PORT=8086 PAYSIM_B_PORT=8087
export WORKER_HEALTH_ADDR=127.0.0.1:8193
export LOG_LEVEL="${LOG_LEVEL:-warn}"
# Every saga runs on the worker process, so killing it interrupts sagas
# mid-step; the gateway only starts them.
export API_EMBED_WORKER=false
# One client address sends everything: limits far above it (the limiter and
# its Redis fallback stay in the path).
export RATE_LIMIT_PER_IP=100000000 RATE_LIMIT_PER_USER=100000000
# Parked orders retry every 1-5 s and a breaker tries again after 5 s, so the
# run settles within its quiescence bound after the last fault.
export PAYMENT_RETRY_INITIAL=1s PAYMENT_RETRY_MAX=5s PAYMENT_BREAKER_OPEN_TIMEOUT=5s
# The stack's development secret, which the load generator also mints its
# customers' tokens with.
export AUTH_HS256_SECRET; AUTH_HS256_SECRET="$(new_auth_secret)"
trap '"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true' EXIT

cd "$ROOT"
fresh_stack >/dev/null
# shellcheck disable=SC2086
bin/orderflow-dev chaos --api "http://$API_ADDR" --duration "${CHAOS_DURATION:-10m}" --rate "${CHAOS_RATE:-10}" \
  --providers "http://127.0.0.1:$PAYSIM_A_PORT,http://127.0.0.1:$PAYSIM_B_PORT" \
  --stack-script "$ROOT/scripts/stack.sh" ${CHAOS_ARGS:-}
