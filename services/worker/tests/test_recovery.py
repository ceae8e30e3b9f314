"""No meeting stays stuck: real worker processes find meetings whose task was lost and finish
them (Redis lost the queue; a restore brought back a meeting mid-pipeline), without running a
second copy of a step that is still going."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from mi_testing import ServiceProcess

pytestmark = pytest.mark.slow

StartWorker = Callable[..., ServiceProcess]
# Sweep every second, queue again what nothing touched for 2 s: the bound becomes seconds.
FAST_SWEEP = {"WORKER_SWEEP_INTERVAL": "1", "WORKER_SWEEP_STALE_AFTER": "2"}
NO_SWEEP = {"WORKER_SWEEP_INTERVAL": "3600"}


def upload(client: httpx.Client, audio: Path) -> str:
    with audio.open("rb") as file:
        reply = client.post("/api/v1/meetings", files={"file": (audio.name, file)})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def wait_for(
    client: httpx.Client,
    meeting_id: str,
    statuses: set[str],
    workers: list[ServiceProcess],
    timeout: float,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/meetings/{meeting_id}").json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            logs = "\n".join(w.log()[-3000:] for w in workers)
            pytest.fail(f"meeting stuck in {body['status']!r} (want {statuses}):\n{logs}")
        time.sleep(0.1)


def test_a_meeting_whose_task_redis_lost_is_finished_within_the_bound(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    redis_url: str,
    count_rows: Callable[[str], int],
) -> None:
    meeting_id = upload(client, spoken_wav)
    with redis.Redis.from_url(redis_url) as broker:
        assert broker.flushdb()  # Redis restarted without its data: the task is gone
    started = time.monotonic()
    worker = start_worker(**FAST_SWEEP)

    body = wait_for(client, meeting_id, {"done", "failed"}, [worker], timeout=60)

    assert body["status"] == "done", body["error"]
    assert time.monotonic() - started < 60
    assert "budget" in body["transcript"]["text"].lower()
    assert f"meeting {meeting_id}: queued with no task" in worker.log()
    assert "queued again (recovery 1 of at most 3)" in worker.log()
    assert count_rows("transcripts") == 1


@pytest.mark.chaos  # ~30 s: `nox -s chaos`; the test above proves the sweeper by default
def test_a_meeting_a_restore_left_mid_pipeline_resumes_where_it_was(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    redis_url: str,
    count_rows: Callable[[str], int],
) -> None:
    # Transcription only: the meeting stops in `analyzing`, its next task waiting in Redis.
    first = start_worker("--queues", "pipeline,transcribe", **NO_SWEEP)
    meeting_id = upload(client, spoken_wav)
    wait_for(client, meeting_id, {"analyzing"}, [first], timeout=60)
    first.stop()
    with redis.Redis.from_url(redis_url) as broker:
        broker.flushdb()  # restored database, empty Redis: nothing will move it any more

    second = start_worker(**FAST_SWEEP)
    body = wait_for(client, meeting_id, {"done", "failed"}, [first, second], timeout=60)

    assert body["status"] == "done", body["error"]
    assert body["action_items"]
    assert f"meeting {meeting_id}: analyzing with no task" in second.log()
    assert "transcribed meeting" not in second.log()  # the stored transcript was kept
    assert count_rows("transcripts") == 1


@pytest.mark.chaos  # ~45 s: `nox -s chaos` (test_sweeper.py covers the lease in-process)
def test_a_step_still_running_is_never_started_a_second_time(
    client: httpx.Client,
    start_worker: StartWorker,
    long_spoken_wav: Path,
    redis_url: str,
    count_rows: Callable[[str], int],
) -> None:
    worker = start_worker("--concurrency", "2", **FAST_SWEEP)
    meeting_id = upload(client, long_spoken_wav)
    wait_for(client, meeting_id, {"transcribing"}, [worker], timeout=30)
    with redis.Redis.from_url(redis_url) as broker:
        broker.flushdb()  # the running step's message is gone from Redis too
    time.sleep(4)  # several sweeps, every one past the 2 s threshold

    body = wait_for(client, meeting_id, {"done", "failed"}, [worker], timeout=90)

    assert body["status"] == "done", body["error"]
    log = worker.log()
    assert log.count(f"transcribed meeting {meeting_id}") == 1
    assert "queued again" not in log  # its lease kept the sweeper away
    assert count_rows("transcripts") == 1


@pytest.mark.chaos  # ~40 s: `nox -s chaos`
def test_a_stop_mid_transcription_finishes_the_task_and_costs_no_delivery(
    client: httpx.Client,
    worker_env: dict[str, str],
    long_spoken_wav: Path,
    redis_url: str,
    tmp_path: Path,
    count_rows: Callable[[str], int],
) -> None:
    """The local runtime's own worker program under a real supervisord, stopped the way
    `inv down` stops it, while it transcribes."""
    from mi_testing import free_port, subprocess_env
    from ops.runtimes.local import worker_program
    from ops.runtimes.local.supervisor import Layout, Supervisor, render_config

    env = {**worker_env, **NO_SWEEP, "WORKER_METRICS_PORT": str(free_port())}
    program = worker_program(env, "--concurrency=1", "--without-mingle", "--without-gossip")
    assert program.stopwaitsecs > float(env["WORKER_TIME_LIMIT"])
    layout = Layout(tmp_path / "supervised")
    layout.conf.parent.mkdir()
    layout.conf.write_text(render_config(layout, "mi-chaos", [program]))
    sup = Supervisor(layout)
    sup.start(subprocess_env(**env))
    try:
        sup.start_program("worker")
        log = layout.log_of("worker")
        wait_until(lambda: log.exists() and " ready." in log.read_text(), "worker ready")
        meeting_id = upload(client, long_spoken_wav)
        wait_for(client, meeting_id, {"transcribing"}, [], timeout=30)

        sup.rpc.stopProcess("worker", False)  # SIGTERM, as `inv down` sends it
        wait_until(
            lambda: next(i for i in sup.info() if i["name"] == "worker")["statename"] == "STOPPED",
            "the worker to stop",
            timeout=120,
        )

        assert f"transcribed meeting {meeting_id}" in log.read_text()  # finished, then exited
        assert "WorkerLostError" not in log.read_text()
        sup.start_program("worker")
        body = wait_for(client, meeting_id, {"done", "failed"}, [], timeout=90)
    finally:
        sup.shutdown()

    assert body["status"] == "done", body["error"]
    assert count_rows("transcripts") == 1
    with redis.Redis.from_url(redis_url) as broker:
        counts = [int(broker.get(key) or 0) for key in broker.scan_iter("mi:deliveries:*")]
    assert counts and set(counts) == {1}, counts  # every message delivered exactly once
    assert "delivered again" not in log.read_text()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
