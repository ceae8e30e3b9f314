"""The web UI's meeting list at 10,000 meetings: keyset pages vs the API's OFFSET listing.

    uv run python benchmarks/web_list.py [--meetings 10000] [--requests 30] [--runs 5]

Side by side in one run, against one seeded database (Postgres 16 from pgserver, the app
served by uvicorn in this process): `GET /` pages (keyset cursor, what the UI uses) and
`GET /api/v1/meetings?offset=` (OFFSET + count(*), what the API lists with), each at the
first, the middle and the last page. A run times `--requests` sequential requests per page;
the median request latency over `--runs` runs is reported. Sequential on purpose: this
measures what one page costs, not throughput.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _timing import machine
from api_seed import seed

from backend.config import BackendSettings
from backend.main import create_app
from common.database import libpq_url
from mi_testing import ApiServer
from mi_testing.stores import Postgres, RedisServer

TOKEN = "benchmark-token-0123456789abcdef"  # noqa: S105 - a throwaway local server
PAGE = 20


def _latency_ms(client: httpx.Client, url: str, requests: int) -> float:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        reply = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        reply.raise_for_status()
    return statistics.median(samples)


def _keyset_urls(client: httpx.Client, meetings: int) -> dict[str, str]:
    """The UI's URLs of the first, middle and last page, found by following "Older" links."""
    import re

    wanted = {0: "first", (meetings // PAGE) // 2: "middle", (meetings - 1) // PAGE: "last"}
    urls: dict[str, str] = {}
    url: str | None = "/"
    number = 0
    while url is not None:
        if number in wanted:
            urls[wanted[number]] = url
        page = client.get(url).text
        older = re.search(r'href="(/\?before=[^"]+)" rel="next"', page)
        url = older.group(1) if older else None
        number += 1
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30, help="requests per page per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="mi-bench-") as scratch:
        root = Path(scratch)
        pg = Postgres(root / "pg")
        redis = RedisServer(root / "redis")
        try:
            url = pg.create_database(migrated=True)  # the app's: the app role
            # Seeding vacuums and checkpoints: the superuser's work.
            seed(libpq_url(pg.url(pg.database_of(url))), args.meetings)
            settings = BackendSettings.model_validate(
                {
                    "database_url": url,
                    "redis_url": redis.url,
                    "api_token": TOKEN,
                    "media_dir": root / "media",
                    "log_level": "WARNING",
                }
            )
            with (
                ApiServer(create_app(settings)) as server,
                httpx.Client(base_url=server.url, timeout=60) as client,
            ):
                signed_in = client.post("/sign-in", data={"token": TOKEN})
                assert signed_in.status_code == 303, signed_in.text
                keyset = _keyset_urls(client, args.meetings)
                last_offset = ((args.meetings - 1) // PAGE) * PAGE
                offsets = {"first": 0, "middle": last_offset // 2, "last": last_offset}
                api = {
                    name: f"/api/v1/meetings?limit={PAGE}&offset={offset}"
                    for name, offset in offsets.items()
                }
                results: dict[str, dict[str, list[float]]] = {"ui": {}, "api": {}}
                for _ in range(args.runs):
                    for name in ("first", "middle", "last"):
                        results["ui"].setdefault(name, []).append(
                            _latency_ms(client, keyset[name], args.requests)
                        )
                        results["api"].setdefault(name, []).append(
                            _latency_ms(client, api[name], args.requests)
                        )
        finally:
            redis.stop()
            pg.stop()

    print(
        f"{args.meetings} meetings, {PAGE} per page; median request latency (ms) over "
        f"{args.runs} runs of {args.requests} sequential requests"
    )
    print(f"{'page':<8} {'UI GET / (keyset)':>20} {'API ?offset= (OFFSET)':>24}")
    for name in ("first", "middle", "last"):
        ui = statistics.median(results["ui"][name])
        offset = statistics.median(results["api"][name])
        print(f"{name:<8} {ui:>20.2f} {offset:>24.2f}")


if __name__ == "__main__":
    main()
