"""Fallback load generator for api_load.py when wrk is not installed: asyncio + httpx.

    python benchmarks/api_loadgen.py BASE_URL PATHS_FILE TOKEN CLIENTS SECONDS

Runs CLIENTS concurrent request loops for SECONDS, each picking a random path from
PATHS_FILE, and prints one JSON line with throughput and latency percentiles. It runs in its
own process so its CPU use is not counted against the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

import httpx


async def _client(
    http: httpx.AsyncClient, paths: list[str], stop: float, latencies: list[float]
) -> int:
    errors = 0
    while time.perf_counter() < stop:
        path = random.choice(paths)
        started = time.perf_counter()
        try:
            reply = await http.get(path)
            if reply.status_code >= 400:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        latencies.append(time.perf_counter() - started)
    return errors


async def run(
    base: str, paths: list[str], token: str, clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=10
    ) as http:
        started = time.perf_counter()
        stop = started + seconds
        errors = await asyncio.gather(
            *(_client(http, paths, stop, latencies) for _ in range(clients))
        )
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p90_ms": cuts[89] * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": max(latencies) * 1000,
        "requests": len(latencies),
        "errors": sum(errors),
    }


def main() -> None:
    base, paths_file, token, clients, seconds = sys.argv[1:6]
    paths = [line for line in Path(paths_file).read_text().splitlines() if line]
    result = asyncio.run(run(base, paths, token, int(clients), float(seconds)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
