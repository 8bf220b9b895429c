"""A small closed-loop load generator: N concurrent clients, each sending as fast as answers come."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

# (method, path, kwargs for aiohttp's request) for client number i, request number n
RequestFactory = Callable[[int, int], tuple[str, str, dict[str, Any]]]


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def row(self) -> str:
        mx = max(self.latencies) * 1000 if self.latencies else float("nan")
        mean = statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")
        return (
            f"{self.name:<28} {self.throughput:>9.0f} req/s  p50 {self.pct(50):>7.2f} ms  "
            f"p99 {self.pct(99):>7.2f} ms  max {mx:>7.2f} ms  mean {mean:>6.2f} ms  "
            f"n={self.requests} errors={self.errors}"
        )


async def run_load(
    base_url: str, make: RequestFactory, *, concurrency: int, seconds: float, warmup: float = 1.0, name: str = ""
) -> Result:
    """Drive ``base_url`` for ``warmup`` + ``seconds``; only the measured part is reported."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    counts = {"ok": 0, "err": 0}
    start_measure = time.perf_counter() + warmup
    stop = start_measure + seconds

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        n = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            method, path, kwargs = make(i, n)
            n += 1
            try:
                async with session.request(method, base_url + path, **kwargs) as resp:
                    await resp.read()
                    ok = resp.status < 400
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            t1 = time.perf_counter()
            if t0 >= start_measure:
                if ok:
                    counts["ok"] += 1
                    latencies.append(t1 - t0)
                else:
                    counts["err"] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(i, session) for i in range(concurrency)))
    return Result(name, counts["ok"], counts["err"], seconds, latencies)


async def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.1)
