"""Python twat-mp's AsyncMultiPool on the workload of benches/async_pool.rs: 1,000 tasks
that each sleep 10 ms, at default settings, on a warm pool.

Needs `pip install 'twat-mp[aio]'`. Prints the mean time per run in ms as its last line.
"""

import asyncio
import statistics
import sys
import time

from twat_mp.async_mp import AsyncMultiPool

TASKS = 1_000
RUNS = 10


async def nap(i):
    await asyncio.sleep(0.010)
    return i


async def main():
    async with AsyncMultiPool() as pool:
        await pool.map(nap, range(TASKS))  # warm-up: workers started
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            results = await pool.map(nap, range(TASKS))
            times.append(time.perf_counter() - start)
            assert results == list(range(TASKS))
    mean = statistics.mean(times) * 1e3
    spread = statistics.stdev(times) * 1e3
    print(f"{mean:.2f} ms (+/- {spread:.2f} ms over {RUNS} runs, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    asyncio.run(main())
