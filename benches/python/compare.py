"""Python twat-mp (2.6.5) and mpire on the workloads of benches/python_peers.rs, run by
benches/compare-python.sh in a virtualenv of its own:

- trivial items: `map` of 1,000,000 integers through a multiply-and-mask, warm pool of 2
  workers (items/s: the best of 3 runs);
- CPU-bound items: 32 items of about 25 ms of CPU each *in Python* (a loop calibrated
  here), warm pool of 2 workers (seconds: the best of 3 runs; 2 cores allow 0.4 s);
- a pool's whole life with one item (start, one item, close), twat-mp only (ms: mean of 10).

Prints `key value` lines for the Rust side to read.
"""

import functools
import sys
import time

from mpire import WorkerPool
from twat_mp import ProcessPool

WORKERS = 2
TRIVIAL_ITEMS = 1_000_000
CPU_ITEMS = 32
RUNS = 3


def mix(x):
    return (x * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF


def spin(seed, rounds):
    x = seed
    for _ in range(rounds):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return x


def calibrate(seconds):
    """The rounds of `spin` that take about `seconds` here (best of 5 probes)."""
    probe = 200_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(1, probe)
        best = min(best, time.perf_counter() - start)
    return max(1, int(seconds / (best / probe)))


def best_time(run):
    run()  # warm: workers started
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def check(results, items, f):
    assert len(results) == len(items) and results[-1] == f(items[-1])


def main():
    trivial = list(range(TRIVIAL_ITEMS))
    rounds = calibrate(0.025)
    work = functools.partial(spin, rounds=rounds)
    cpu = list(range(CPU_ITEMS))

    serial = [work(seed) for seed in cpu]
    # Best of 3, as the pools are timed: a single run is slower than the steady state.
    print(f"serial_cpu_s {best_time(lambda: [work(seed) for seed in cpu]):.4f}")

    with ProcessPool(nodes=WORKERS) as pool:
        check(pool.map(mix, trivial), trivial, mix)
        seconds = best_time(lambda: pool.map(mix, trivial))
        print(f"twat_mp_trivial_items_per_s {TRIVIAL_ITEMS / seconds:.0f}")
        assert pool.map(work, cpu) == serial
        print(f"twat_mp_cpu_s {best_time(lambda: pool.map(work, cpu)):.4f}")

    with WorkerPool(n_jobs=WORKERS, keep_alive=True) as pool:
        check(pool.map(mix, trivial), trivial, mix)
        seconds = best_time(lambda: pool.map(mix, trivial))
        print(f"mpire_trivial_items_per_s {TRIVIAL_ITEMS / seconds:.0f}")
        # One item per task: 32 items of 25 ms are too few to batch.
        assert pool.map(work, cpu, chunk_size=1) == serial
        print(f"mpire_cpu_s {best_time(lambda: pool.map(work, cpu, chunk_size=1)):.4f}")

    lives = []
    for _ in range(10):
        start = time.perf_counter()
        with ProcessPool(nodes=WORKERS) as pool:
            assert pool.map(mix, [3]) == [mix(3)]
        lives.append(time.perf_counter() - start)
    print(f"twat_mp_life_ms {sum(lives) / len(lives) * 1e3:.2f}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
