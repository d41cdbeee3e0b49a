#!/usr/bin/env bash
# make bench: each measurement on a fresh stack from the lab (the bench
# profile: make run's topology on ports of its own), because the dev server
# slows down as its SQLite files fill, and the phase that ran second would
# pay for the first:
#   1. the baseline, eager start (how the gateway starts sagas)
#   2. the baseline, standard start (through task matching)
#   3. the order path: step search, then the half-rate run, reported with both
# Writes bench/results/<timestamp>.json and .svg.
#   BENCH_ARGS    extra flags for every `orderflow-dev bench` phase (e.g. "--step 5s")
#   ORDERS_ARGS   extra flags for the order phase only (e.g. "--preload 100000")
#   BENCH_ONLY=orders  skip the baselines and report the ones the last run saved
set -euo pipefail
cd "$(dirname "$0")/.."
go build -trimpath -o bin/orderflow-dev ./devtools/cmd/orderflow-dev
saved=.data/bench-baselines
mkdir -p "$saved"
with() { bin/orderflow-dev lab with --profile bench -- bin/orderflow-dev bench "$@"; }
# shellcheck disable=SC2086
if [ "${BENCH_ONLY:-}" != orders ]; then
  with --phase baseline --baseline-eager=true --save-baseline "$saved/eager.json" ${BENCH_ARGS:-}
  with --phase baseline --baseline-eager=false --save-baseline "$saved/standard.json" ${BENCH_ARGS:-}
fi
# shellcheck disable=SC2086
with --phase orders --baselines "$saved/eager.json,$saved/standard.json" ${BENCH_ARGS:-} ${ORDERS_ARGS:-} "$@"
