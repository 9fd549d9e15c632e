#!/usr/bin/env bash
# Runs the `mpi_scaling` bench (feature `mpi`) under mpirun with 1, 2 and 4 ranks
# (--oversubscribe: more ranks than cores is allowed) and prints the scaling table.
# Needs Open MPI (or another MPI with `mpirun`) and libclang to build.
#
#   benches/mpi_scaling.sh            # 1 2 4 ranks
#   benches/mpi_scaling.sh 1 2 4 8    # other job sizes
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
if [[ ${#sizes[@]} -eq 0 ]]; then
    sizes=(1 2 4)
fi
root=()
if [[ "$(id -u)" -eq 0 ]]; then
    root=(--allow-run-as-root)
fi

bench=$(cargo bench --features mpi --bench mpi_scaling --no-run 2>&1 |
    sed -n 's/^ *Executable .*(\(.*\))$/\1/p')
if [[ ! -x "$bench" ]]; then
    echo "cargo did not report the mpi_scaling executable" >&2
    exit 1
fi

rows=()
for n in "${sizes[@]}"; do
    out=$(timeout 600 mpirun --oversubscribe "${root[@]}" -n "$n" "$bench" --bench)
    grep -v '^ROW ' <<<"$out"
    rows+=("$(grep '^ROW ' <<<"$out")")
done

echo
echo "| ranks | running items | 64 × 25 ms: median | speedup vs 1 rank | trivial items |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" | awk '
    {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (NR == 1) base = v["cpu_s"]
        printf "| %s | %s | %.3f s | %.2fx | %.2f M/s |\n",
            v["ranks"], v["workers"], v["cpu_s"], base / v["cpu_s"], v["trivial_mps"]
    }'
