#!/usr/bin/env bash
# make bench: each measurement on a fresh stack from the lab (the bench
# profile: make run's topology on ports of its own), because the dev server
# slows down as its SQLite files fill, and the phase that ran second would
# pay for the first:
#   1. the baseline, eager start (how the gateway starts sagas)
#   2. the baseline, standard start (through task matching)
#   3. the order path: step search, then the half-rate run, reported with both
#   4. overload: open loop at multiples of the capacity step 3 found, by
#      clients that give up at a refusal, by clients that honour Retry-After,
#      and by vegeta at the same rates
# Writes bench/results/<timestamp>.json and .svg, and <timestamp>-overload.json.
#   BENCH_ARGS    extra flags for every `orderflow-dev bench` phase (e.g. "--step 5s")
#   ORDERS_ARGS   extra flags for the order phase only (e.g. "--preload 100000")
#   OVERLOAD_ARGS extra flags for the overload phase only (e.g. "--factors 2 --overload-step 20s")
#   VEGETA_FACTORS the multiples vegeta offers (default 0.5,1,2,5; "" skips it)
#   BENCH_ONLY=orders    skip the baselines and report the ones the last run saved
#   BENCH_ONLY=overload  only the overload phase, at the capacity the last run saved
#   TEMPORAL_BACKEND     the lab's Temporal (dev, cluster): each keeps baselines
#                        and capacity of its own
set -euo pipefail
cd "$(dirname "$0")/.."
go build -trimpath -o bin/orderflow-dev ./devtools/cmd/orderflow-dev
saved=.data/bench-baselines
if [ -n "${TEMPORAL_BACKEND:-}" ] && [ "${TEMPORAL_BACKEND}" != dev ]; then saved="$saved-$TEMPORAL_BACKEND"; fi
mkdir -p "$saved"
with() { bin/orderflow-dev lab with --profile bench -- bin/orderflow-dev bench "$@"; }
only=${BENCH_ONLY:-}
# shellcheck disable=SC2086
if [ -z "$only" ]; then
  with --phase baseline --baseline-eager=true --save-baseline "$saved/eager.json" ${BENCH_ARGS:-}
  with --phase baseline --baseline-eager=false --save-baseline "$saved/standard.json" ${BENCH_ARGS:-}
fi
# shellcheck disable=SC2086
if [ "$only" != overload ]; then
  with --phase orders --baselines "$saved/eager.json,$saved/standard.json" --save-capacity "$saved/capacity" \
    ${BENCH_ARGS:-} ${ORDERS_ARGS:-} "$@"
fi
# shellcheck disable=SC2086
if [ "$only" != orders ]; then
  with --phase overload --capacity-file "$saved/capacity" --vegeta-factors "${VEGETA_FACTORS-0.5,1,2,5}" \
    ${BENCH_ARGS:-} ${OVERLOAD_ARGS:-}
fi
