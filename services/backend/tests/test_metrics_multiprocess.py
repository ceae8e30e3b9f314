"""`python -m backend` with BACKEND_WORKERS=2: requests land in both uvicorn processes, and one
scrape of /metrics (answered by either) reports the sum of both."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from mi_testing import ServiceProcess, free_port, subprocess_env

pytestmark = pytest.mark.observability

HEALTH = {"method": "GET", "route": "/health", "service": "backend", "status": "200"}


def health_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels == HEALTH
    )


def per_process(files: Path, scratch: Path) -> dict[str, float]:
    """/health requests counted by each process, read from that process's file alone."""
    counts = {}
    for path in files.glob("counter_*.db"):
        alone = scratch / path.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[path.stem.rsplit("_", 1)[1]] = sum(
            sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "http_requests_total" and sample.labels == HEALTH
        )
    return counts


def test_two_uvicorn_workers_report_one_total(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    # Not configured: `python -m backend` picks its own directory per port, and clears it.
    files = Path(tempfile.gettempdir()) / "mi-metrics" / f"backend-{port}"
    files.mkdir(parents=True, exist_ok=True)
    (files / "counter_99999999.db").write_bytes(b"stale: left by a previous run")
    server = ServiceProcess(
        [sys.executable, "-m", "backend"],
        {k: v for k, v in subprocess_env().items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "API_TOKEN": "multiprocess-test-token-0123",
            "MEDIA_DIR": str(tmp_path / "media"),
            "BACKEND_HOST": "127.0.0.1",
            "BACKEND_PORT": str(port),
            "BACKEND_WORKERS": "2",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
        },
        tmp_path / "backend.log",
    ).start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        server.wait_until(up, timeout=60, what="backend /health")
        # A new connection per request, from many threads: the kernel hands the accepts to
        # both processes. Keep going until each of them has served some.
        sent = 1  # the readiness probe above
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, limits=no_keepalive, timeout=10) as http:

            def hit(_: int) -> int:
                return http.get("/health").status_code

            with ThreadPoolExecutor(16) as pool:
                deadline = time.monotonic() + 60
                while True:
                    codes = list(pool.map(hit, range(200)))
                    assert set(codes) == {200}
                    sent += len(codes)
                    served = per_process(files, tmp_path / "scratch")
                    if len([n for n in served.values() if n > 0]) >= 2:
                        break
                    assert time.monotonic() < deadline, f"one process served all: {served}"

        # A request is counted just after its response went out: let the last ones land.
        settle = time.monotonic() + 5
        while sum((served := per_process(files, tmp_path / "scratch")).values()) < sent:
            if time.monotonic() > settle:
                break
            time.sleep(0.05)
        assert "99999999" not in served  # the stale file was cleared at start
        assert sum(served.values()) == sent
        # Either process answers the scrape; each time the answer is the total.
        for _ in range(4):
            reply = httpx.get(f"{base}/metrics", timeout=10)
            assert health_requests(reply.text) == sent
    finally:
        server.stop()
        shutil.rmtree(files, ignore_errors=True)
