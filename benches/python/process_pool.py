"""Python twat-mp's ProcessPool on the workloads of benches/process_pool.rs: `map` over
trivial integers on a warm pool of 2 workers, and a pool's whole life with one item
(start, one item, close).

Needs `pip install twat-mp`. Prints two lines, `map_items_per_s N` and `life_ms N`.
"""

import statistics
import time

from twat_mp import ProcessPool

ITEMS = 1_000_000
RUNS = 3


def mix(x):
    return (x * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF


def main():
    with ProcessPool(nodes=2) as pool:
        pool.map(mix, range(ITEMS))  # warm-up: workers started
        rates = []
        for _ in range(RUNS):
            start = time.perf_counter()
            results = pool.map(mix, range(ITEMS))
            rates.append(ITEMS / (time.perf_counter() - start))
            assert len(results) == ITEMS
    print(f"map_items_per_s {statistics.mean(rates):.0f}")

    lives = []
    for _ in range(10):
        start = time.perf_counter()
        with ProcessPool(nodes=2) as pool:
            assert pool.map(mix, [3]) == [mix(3)]
        lives.append(time.perf_counter() - start)
    print(f"life_ms {statistics.mean(lives) * 1e3:.2f}")


if __name__ == "__main__":
    main()
