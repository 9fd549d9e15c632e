#!/usr/bin/env bash
# Every bench of the workspace, then BENCHMARKS.md and BENCHMARKS.svg regenerated from
# the figures they recorded (target/bench-results/). About 45 minutes on 2 cores; the
# machine should be otherwise idle for figures worth comparing across runs.
#
#   benches/run-all.sh
#
# MpiPool's scaling is measured apart, under mpirun: benches/mpi_scaling.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

results="${CARGO_TARGET_DIR:-target}/bench-results"
rm -rf "$results"
mkdir -p "$results"
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

for bench in thread_pool process_pool async_dispatch async_pool scaling \
    insights progress shared_data worker_state; do
    cargo bench --bench "$bench"
done
benches/compare-python.sh

echo "load average $load_at_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end of the run" \
    >"$results/load.txt"
TWAT_MP_WRITE_BENCHMARKS=1 cargo bench --bench summary
