"""`inv health`: every dependency and service checked at once, each under its own timeout.

The checks reach the stack through the ports in `.env.<env>`, so they work the same whether
the local runtime or compose runs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from common import grpc_health
from common.database import libpq_url
from common.health import Check, HealthReport, run_checks
from meetings.pipeline import ALL_QUEUES

CHECK_TIMEOUT = 2.0


def postgres_probe(database_url: str) -> Any:
    async def probe() -> str:
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            libpq_url(database_url), connect_timeout=int(CHECK_TIMEOUT)
        ) as conn:
            cur = await conn.execute("SELECT current_setting('server_version')")
            row = await cur.fetchone()
        return f"postgres {row[0] if row else '?'}"

    return probe


def redis_probe(redis_url: str) -> Any:
    async def probe() -> str:
        import redis.asyncio as redis

        client = redis.from_url(redis_url, socket_connect_timeout=CHECK_TIMEOUT)
        try:
            await client.ping()
            info = await client.info("server")
        finally:
            await client.aclose()
        return f"redis {info.get('redis_version', '?')}"

    return probe


def http_probe(url: str, token: str = "") -> Any:
    """GET `url` and expect 200. The stdlib client: httpx costs ~0.35 s just to import. With
    `token` (the API's), the backend's readiness says why a dependency fails."""

    def get() -> str:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=CHECK_TIMEOUT)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {_failing(body)}")
        return f"{response.status} OK"

    async def probe() -> str:
        return await asyncio.to_thread(get)

    return probe


def _failing(body: bytes) -> str:
    """The names and details of the failing sub-checks in a /health/ready answer."""
    import json

    try:
        checks = json.loads(body).get("checks", {})
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")
    failing = [f"{name}: {c.get('detail', '')}" for name, c in checks.items() if not c.get("ok")]
    return "; ".join(failing) or body[:200].decode(errors="replace")


def grpc_probe(target: str, engine_metrics: str | None = None) -> Any:
    """grpc.health.v1 at `target`; with `engine_metrics` (the whisper service's /metrics URL),
    the detail also says which engine and model serve, when that page answers."""

    async def probe() -> str:
        import grpc

        async with grpc.aio.insecure_channel(target) as channel:
            status = await grpc_health.check_async(channel, timeout=CHECK_TIMEOUT)
        if engine_metrics is None:
            return status
        engine = await asyncio.to_thread(serving_engine, engine_metrics)
        return f"{status} ({engine})" if engine else status

    return probe


def serving_engine(metrics_url: str) -> str | None:
    """ "faster-whisper whisper cpu/int8" from the whisper service's `whisper_engine_ready`
    gauge, or None when the page does not answer (a port not published, say)."""
    import re
    import urllib.request

    try:
        # The URL is built from the env file's host and port: http only.
        with urllib.request.urlopen(metrics_url, timeout=CHECK_TIMEOUT / 2) as page:  # noqa: S310
            text = page.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    for labels, value in re.findall(r"^whisper_engine_ready\{([^}]*)\} (\S+)$", text, re.M):
        if float(value) == 1:
            found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            return (
                f"{found.get('engine')}, model {found.get('model')}, "
                f"{found.get('device')}/{found.get('compute_type')}"
            )
    return None


def worker_probe(redis_url: str) -> Any:
    def ping() -> str:
        import redis
        from celery import Celery

        app = Celery("mi-health", broker=redis_url)
        try:
            # limit=1 returns on the first answer instead of waiting out the timeout.
            replies = app.control.ping(timeout=CHECK_TIMEOUT - 0.3, limit=1)
        finally:
            app.close()
        if not replies:
            raise RuntimeError("no Celery worker answered ping")
        # The queues the pipeline routes to; their depth is reported, not judged.

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=CHECK_TIMEOUT)
        try:
            depths = {q: client.llen(q) for q in ALL_QUEUES}
        finally:
            client.close()
        workers = ", ".join(name for reply in replies for name in reply)
        queued = ", ".join(f"{q}={n}" for q, n in depths.items() if n) or "queues empty"
        return f"{workers}; {queued}"

    async def probe() -> str:
        return await asyncio.to_thread(ping)

    return probe


def media_probe(values: Mapping[str, str]) -> Any:
    """The recordings store answers, and takes a write and a delete (a key that may only read
    is named here, not at the first upload)."""

    def probe() -> str:
        from ops import media
        from recordings import StoreError

        try:
            return media.store_for(values).check(write=True)
        except StoreError as exc:
            raise RuntimeError(f"{exc.problem}; {exc.fix}") from None

    async def run() -> str:
        return await asyncio.to_thread(probe)

    return run


def checks_for(values: Mapping[str, str], *, ollama: bool = False) -> list[Check]:
    """The checks of a stack configured by `values` (an env file, interpolated)."""
    backend = f"http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}"
    whisper_metrics = (
        f"http://{values['WHISPER_HOST']}:{values['WHISPER_METRICS_PORT']}/metrics"
        if "WHISPER_HOST" in values and "WHISPER_METRICS_PORT" in values
        else None
    )
    checks = [
        Check("postgres", postgres_probe(values["DATABASE_URL"]), timeout=CHECK_TIMEOUT),
        Check("redis", redis_probe(values["REDIS_URL"]), timeout=CHECK_TIMEOUT),
        Check(
            "backend",
            http_probe(f"{backend}/health/ready", values.get("API_TOKEN", "")),
            timeout=CHECK_TIMEOUT + 1,
        ),
        Check(
            "whisper",
            grpc_probe(values["WHISPER_URL"], whisper_metrics),
            timeout=CHECK_TIMEOUT,
        ),
        Check("llm", http_probe(f"{values['LLM_URL']}/health/ready"), timeout=CHECK_TIMEOUT),
        Check("worker", worker_probe(values["REDIS_URL"]), timeout=CHECK_TIMEOUT + 0.5),
    ]
    if values.get("MEDIA_STORE") == "s3":
        # A directory is the backend's own business (its readiness reports it; under compose
        # it is a volume this machine cannot see); a bucket is shared by every service.
        checks.append(Check("media", media_probe(values), timeout=CHECK_TIMEOUT + 3))
    if values.get("LLM_ENGINE") == "local":
        # llama.cpp answers 503 while it loads the model, 200 once it can serve.
        url = str(values["LLAMA_URL"]).rstrip("/")
        checks.append(Check("llama", http_probe(f"{url}/health"), timeout=CHECK_TIMEOUT))
    if ollama:
        url = str(values["OLLAMA_URL"]).rstrip("/")
        checks.append(
            Check("ollama", http_probe(f"{url}/api/tags"), required=False, timeout=CHECK_TIMEOUT)
        )
    return checks


def _preload() -> None:
    """Import the client libraries before any check's clock starts: on a busy machine their
    import time alone could exceed a check's timeout and fail a healthy service."""
    import celery.app.control  # noqa: F401
    import grpc  # noqa: F401
    import psycopg  # noqa: F401
    import redis.asyncio  # noqa: F401


def run(values: Mapping[str, str], *, wait: float = 0, ollama: bool = False) -> HealthReport:
    """Check once, or keep checking for up to `wait` seconds until everything passes."""
    _preload()
    deadline = time.monotonic() + wait
    while True:
        report = asyncio.run(run_checks(checks_for(values, ollama=ollama)))
        if report.ok or time.monotonic() >= deadline:
            return report
        time.sleep(0.5)


def wait(values: Mapping[str, str], names: Sequence[str], timeout: float) -> None:
    """Poll the checks named `names` until they all pass; OpsError after `timeout` seconds."""
    from ops.errors import OpsError

    _preload()
    checks = [c for c in checks_for(values) if c.name in names]
    deadline = time.monotonic() + timeout
    while True:
        report = asyncio.run(run_checks(checks))
        if report.ok:
            return
        if time.monotonic() > deadline:
            failing = "; ".join(f"{r.name}: {r.detail}" for r in report.results if not r.ok)
            raise OpsError(f"not healthy after {timeout:g}s: {failing}")
        time.sleep(0.3)


def rows(report: HealthReport) -> list[dict[str, object]]:
    return [
        {
            "check": r.name,
            "status": "ok" if r.ok else ("fail" if r.required else "warn"),
            "latency": f"{r.latency_ms:.0f} ms",
            "detail": r.detail,
        }
        for r in report.results
    ]
