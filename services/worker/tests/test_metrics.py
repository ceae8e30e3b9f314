"""The worker's Prometheus endpoint: what the pipeline records across prefork pool processes,
what it reads from Redis, Postgres and disk at scrape time, and a clear error for a taken port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mi_testing import ServiceProcess, free_port, subprocess_env
from ops.backup.record import record_success
from ops.environment import Environment

StartWorker = Callable[..., ServiceProcess]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    reply.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every label set that contains `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def upload(client: httpx.Client, audio: Path) -> str:
    with audio.open("rb") as file:
        reply = client.post("/api/v1/meetings", files={"file": (audio.name, file)})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def wait_finished(client: httpx.Client, ids: list[str], worker: ServiceProcess) -> dict[str, str]:
    deadline = time.monotonic() + 180
    while True:
        statuses = {i: client.get(f"/api/v1/meetings/{i}").json()["status"] for i in ids}
        if all(s in {"done", "failed"} for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            pytest.fail(f"meetings stuck: {statuses}\n{worker.log()[-4000:]}")
        time.sleep(0.2)


@pytest.mark.observability
def test_pipeline_metrics_add_up_over_the_pool_processes(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    media_dir: Path,
    database_url: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    files = tmp_path / "metric-files"
    env = Environment("dev", tmp_path)
    record_success(env, 12345, 2.5)
    status_dir = env.backup_status_dir

    # Three meetings wait in the queue before any worker runs; one of them lost its file.
    ids = [upload(client, spoken_wav) for _ in range(3)]
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        query = "SELECT media_filename FROM meetings WHERE id = %s"
        row = conn.execute(query, (ids[2],)).fetchone()
    assert row is not None
    (media_dir / row[0]).unlink()

    worker = start_worker(
        "--concurrency",
        "2",
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(files),
        BACKUP_STATUS_DIR=str(status_dir),
    )
    before = scrape(port)
    assert value(before, "mi_exporter_source_up", source="redis") == 1
    assert value(before, "mi_exporter_source_up", source="postgres") == 1
    # Read from Postgres at scrape time: nothing had started when the worker came up, or the
    # first meeting just did; either way some meeting has waited since its upload.
    assert value(before, "mi_oldest_queued_meeting_age_seconds") >= 0

    statuses = wait_finished(client, ids, worker)
    assert sorted(statuses.values()) == ["done", "done", "failed"], statuses
    after = scrape(port)

    assert value(after, "mi_meetings_finished_total", outcome="done") == 2
    assert value(after, "mi_meetings_finished_total", outcome="failed") == 1
    assert value(after, "mi_pipeline_failures_total", stage="transcribe", reason="permanent") == 1
    # Every task of the two good meetings ran once and succeeded: process, transcribe,
    # analyze and index each twice; the lost one got as far as transcribe.
    for stage, runs in (("process", 3), ("transcribe", 2), ("analyze", 2), ("index", 2)):
        count = value(after, "mi_pipeline_stage_duration_seconds_count", stage=stage, outcome="ok")
        assert count == runs, (stage, count)
    assert value(after, "mi_meeting_turnaround_seconds_count", outcome="done") == 2
    audio = total(after, "mi_audio_seconds_total", engine="pocketsphinx")
    assert 2 * 3 < audio < 2 * 30, audio  # the spoken sentence lasts several seconds
    assert total(after, "mi_pipeline_tasks_in_flight") == 0
    assert value(after, "mi_queue_depth", queue="transcribe") == 0
    assert value(after, "mi_meetings", status="queued") == 0
    assert value(after, "mi_oldest_queued_meeting_age_seconds") == 0
    assert value(after, "mi_disk_free_bytes", volume="media") > 0
    assert value(after, "mi_disk_size_bytes", volume="backups") > 0
    assert value(after, "mi_backup_last_size_bytes", env="dev") == 12345
    assert value(after, "mi_backup_last_success_timestamp_seconds", env="dev") > time.time() - 600

    # The tasks really ran in more than one process: each pool child wrote its own files,
    # and the endpoint (in the main process) summed them.
    writers = {path.stem.rsplit("_", 1)[1] for path in files.glob("histogram_*.db")}
    assert len(writers) >= 2, sorted(p.name for p in files.iterdir())
    assert str(worker.pid) not in writers or len(writers) >= 3


@pytest.mark.observability
def test_a_dead_redis_is_reported_not_hung_on(start_worker: StartWorker) -> None:
    port = free_port()
    # Celery keeps retrying the broker in the background; the metrics server already answers.
    worker = start_worker(
        WORKER_METRICS_PORT=str(port), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", wait=False
    )
    deadline = time.monotonic() + 30
    while True:
        started = time.monotonic()
        try:
            samples = scrape(port)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.2)
    assert time.monotonic() - started < 8
    assert value(samples, "mi_exporter_source_up", source="redis") == 0
    assert value(samples, "mi_exporter_source_up", source="postgres") == 1
    assert not any(name == "mi_queue_depth" for name, _ in samples)
    assert worker.alive()


def test_a_taken_metrics_port_stops_the_worker_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "worker"],
            env=subprocess_env(
                DATABASE_URL="postgresql+psycopg://u:p@127.0.0.1:1/db",
                REDIS_URL="redis://127.0.0.1:1/0",
                WORKER_METRICS_PORT=str(port),
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"worker: cannot serve metrics on 127.0.0.1:{port}")
    assert "WORKER_METRICS_PORT" in lines[0]
    assert "in use" in lines[0]
