#!/usr/bin/env bash
# The two-command promise, tested: brings the stack up the way `make run`
# does (the same script, on ports of its own), places an order with curl,
# checks it reaches CONFIRMED with its search attributes, and stops the stack.
source "$(dirname "$0")/lib.sh"

export STACK_DATA_DIR="$ROOT/.data/smoke"
export DATABASE_URL="postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_smoke?sslmode=disable"
export REDIS_URL="redis://127.0.0.1:6381/0"
export TEMPORAL_PORT=7253 TEMPORAL_UI_PORT=8253 TEMPORAL_ADDRESS=127.0.0.1:7253 API_ADDR=127.0.0.1:8091
export TEMPORAL_UI_CODEC_ENDPOINT="http://$API_ADDR/codec"
export API_EMBED_WORKER=true
# The short bench below sends orders and polls from one address: limits far
# above it, the limiter still on as in make run.
export RATE_LIMIT_PER_IP=100000000 RATE_LIMIT_PER_USER=100000000
export PAYSIM_A_PORT=8094 PAYSIM_B_PORT=8095
# The separate worker's health listener, off the default :8081 like every port here.
export WORKER_HEALTH_ADDR=127.0.0.1:8191
# The stack's development secret; the tokens below are minted as make run
# mints the ones it prints.
export AUTH_HS256_SECRET; AUTH_HS256_SECRET="$(new_auth_secret)"
trap '"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true' EXIT
fresh_stack
# shellcheck disable=SC1091
source "$STACK_DATA_DIR/tokens.env"
customer_token=$("$ROOT/bin/orderflow" token --sub c-smoke --role customer)
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://$API_ADDR/v1/products/SKU-1")" = 401 ] ||
  die "smoke: GET /v1/products/SKU-1 without a token was not refused with 401"

body='{"customer_id":"c-smoke","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"smoke@example.com"}'
order_id=$(curl -fsS -X POST "http://$API_ADDR/v1/orders" -H "Authorization: Bearer $customer_token" -H 'Content-Type: application/json' -H 'Idempotency-Key: smoke-1' -d "$body" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["order_id"])')
log "placed order $order_id"
status=""
for _ in $(seq 100); do
  status=$(curl -fsS -H "Authorization: Bearer $customer_token" "http://$API_ADDR/v1/orders/$order_id" | python3 -c 'import sys,json; print(json.load(sys.stdin)["status"])' || true)
  [ "$status" = CONFIRMED ] && break
  sleep 0.1
done
[ "$status" = CONFIRMED ] || die "smoke: order $order_id is $status, not CONFIRMED"
replayed=$(curl -fsS -o /dev/null -D - -X POST "http://$API_ADDR/v1/orders" -H "Authorization: Bearer $customer_token" -H 'Content-Type: application/json' -H 'Idempotency-Key: smoke-1' -d "$body" | tr -d '\r' | awk -F': ' 'tolower($1)=="idempotent-replayed"{print $2}')
[ "$replayed" = true ] || die "smoke: the replay was not marked Idempotent-Replayed"
bin=$(temporal_bin)
found=""
for _ in $(seq 50); do
  found=$("$bin" workflow list --address "$TEMPORAL_ADDRESS" --query "OrderStatus=\"CONFIRMED\" AND CustomerId=\"c-smoke\" AND Region=\"local\" AND OrderTotalCents=4980" -o json | grep -c "order-$order_id" || true)
  [ "$found" -ge 1 ] && break
  sleep 0.2
done
[ "$found" -ge 1 ] || die "smoke: visibility does not show order-$order_id with its search attributes"
# Payloads are sealed in Temporal; the gateway's codec server opens them for
# the operator token make run prints, and the Web UI is pointed at it.
"$bin" workflow show --address "$TEMPORAL_ADDRESS" -w "order-$order_id" -o json >"$STACK_DATA_DIR/history.json"
if grep -q "smoke@example.com\|tok_visa" "$STACK_DATA_DIR/history.json"; then die "smoke: the saga's history shows the e-mail or the card token"; fi
"$bin" workflow show --address "$TEMPORAL_ADDRESS" -w "order-$order_id" -o json \
  --codec-endpoint "$TEMPORAL_UI_CODEC_ENDPOINT" --codec-auth "Bearer $OPERATOR_TOKEN" >"$STACK_DATA_DIR/history-decoded.json" ||
  die "smoke: the codec server did not decode the saga's history for the operator"
python3 - "$STACK_DATA_DIR/history-decoded.json" <<'PY' || die "smoke: the decoded history does not hold the order's input"
import base64, json, sys
h = json.load(open(sys.argv[1]))
data = h["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]["data"]
assert "smoke@example.com" in base64.b64decode(data).decode(), "input not decoded"
PY
curl -fsS "http://127.0.0.1:$TEMPORAL_UI_PORT/api/v1/settings" | grep -q "$TEMPORAL_UI_CODEC_ENDPOINT" ||
  die "smoke: the Web UI's settings do not name the codec endpoint $TEMPORAL_UI_CODEC_ENDPOINT"
log "smoke: the history is sealed; the codec server decodes it for the operator; the Web UI names it"
deep=$(curl -sS -o "$STACK_DATA_DIR/health-deep.json" -w '%{http_code}' -H "Authorization: Bearer $OPERATOR_TOKEN" "http://$API_ADDR/health/deep" || true)
[ "$deep" = 200 ] || die "smoke: GET /health/deep answered $deep: $(cat "$STACK_DATA_DIR/health-deep.json" 2>/dev/null)"
python3 - "$STACK_DATA_DIR/health-deep.json" <<'PY' || die "smoke: /health/deep did not confirm a synthetic order"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "ok" and r["checks"]["synthetic_order"]["status"] == "ok", r
PY
wait_for 15 "the worker's GET /health on $WORKER_HEALTH_ADDR" curl -fsS "http://$WORKER_HEALTH_ADDR/health"
log "smoke: /health/deep confirmed a synthetic order; the worker's /health answers"
log "smoke: a short bench, to show the harness works (no speed is asserted)"
results="$STACK_DATA_DIR/bench-results"
API_URL="http://$API_ADDR" LOG_LEVEL=warn "$ROOT/bin/orderflow-dev" bench --rate-start 10 --step-factor 2 --rate-max 20 \
  --step 4s --refine 0 --fixed 8s --results "$results"
python3 - "$results" <<'PY' || die "smoke: the bench did not write a complete result"
import glob, json, sys
files = glob.glob(sys.argv[1] + "/*.json")
assert len(files) == 1 and glob.glob(sys.argv[1] + "/*.svg"), files
r = json.load(open(files[0]))
for k in ("orders_per_sec", "baseline_per_sec", "ratio", "accept_ms", "complete_ms", "errors",
          "cpu_ms_per_order", "rss_mb", "events_per_order"):
    assert k in r, k
for k in ("p50", "p95", "p99"):
    assert k in r["accept_ms"] and k in r["complete_ms"], k
assert r["fixed_orders"] > 0 and r["events_per_order"] > 0, r
assert "gateway" in r["rss_mb"] and "temporal" in r["cpu_ms_per_order"], r
PY
echo "smoke: 5 passed, 0 failed"
