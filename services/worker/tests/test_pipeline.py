"""The whole pipeline: API upload -> Celery worker subprocess -> real whisper and llm services.

These tests are slow by nature (real speech recognition, real worker processes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.testing import ServiceProcess, free_port

pytestmark = pytest.mark.slow

StartWorker = Callable[..., ServiceProcess]


def upload(client: httpx.Client, audio: Path, title: str = "Planning") -> str:
    with audio.open("rb") as file:
        reply = client.post(
            "/api/v1/meetings", files={"file": (audio.name, file)}, data={"title": title}
        )
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def meeting(client: httpx.Client, meeting_id: str) -> dict[str, Any]:
    reply = client.get(f"/api/v1/meetings/{meeting_id}")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def wait_for_status(
    client: httpx.Client,
    meeting_id: str,
    statuses: set[str],
    *,
    timeout: float,
    workers: list[ServiceProcess] = (),  # type: ignore[assignment]
    interval: float = 0.1,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = meeting(client, meeting_id)
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            logs = "\n".join(w.log()[-4000:] for w in workers)
            pytest.fail(f"meeting stuck in {body['status']!r} (want {statuses}):\n{logs}")
        time.sleep(interval)


def test_upload_is_transcribed_analyzed_and_indexed(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    count_rows: Callable[[str], int],
) -> None:
    worker = start_worker()
    meeting_id = upload(client, spoken_wav, title="Budget planning")
    body = wait_for_status(client, meeting_id, {"done", "failed"}, timeout=120, workers=[worker])

    assert body["status"] == "done", body["error"]
    assert body["error"] is None
    assert body["completed_at"] is not None
    transcript = body["transcript"]
    words = transcript["text"].lower()
    for word in ("alice", "budget", "report", "friday", "bob", "design"):
        assert word in words, transcript["text"]
    assert transcript["engine"] == "pocketsphinx"
    assert transcript["audio_seconds"] > 3
    assert transcript["segments"]
    assert all(s["end"] >= s["start"] for s in transcript["segments"])
    assert body["summary"]
    owners = {item["owner"] for item in body["action_items"]}
    assert {"Alice", "Bob"} <= owners, body["action_items"]
    alice = next(item for item in body["action_items"] if item["owner"] == "Alice")
    assert "budget report" in alice["text"].lower()
    assert alice["due"] and "friday" in alice["due"].lower()

    hits = client.get("/api/v1/search", params={"q": "budget report"}).json()
    assert [hit["id"] for hit in hits["items"]] == [meeting_id]
    assert "<mark>" in hits["items"][0]["snippet"]

    assert count_rows("transcripts") == 1
    assert count_rows("summaries") == 1
    assert count_rows("search_documents") == 1


def test_whisper_down_is_retried_then_failed_with_reason(
    client: httpx.Client, start_worker: StartWorker, spoken_wav: Path
) -> None:
    dead_whisper = f"127.0.0.1:{free_port()}"
    worker = start_worker(WHISPER_URL=dead_whisper)
    meeting_id = upload(client, spoken_wav)
    body = wait_for_status(client, meeting_id, {"done", "failed"}, timeout=90, workers=[worker])

    assert body["status"] == "failed"
    error = body["error"]
    assert error.startswith("transcription: gave up after 3 attempts"), error
    assert dead_whisper in error
    assert body["transcript"] is None
    log = worker.log()
    assert "retry 1/2" in log
    assert "retry 2/2" in log


def test_worker_killed_mid_task_loses_no_meeting(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    count_rows: Callable[[str], int],
) -> None:
    # Short visibility timeout: the killed worker's unacked message comes back in seconds.
    timing = {"WORKER_VISIBILITY_TIMEOUT": "4", "WORKER_TIME_LIMIT": "3.5"}
    timing["WORKER_SOFT_TIME_LIMIT"] = "3"
    timing["WORKER_RETRY_BACKOFF_MAX"] = "1"
    first = start_worker(**timing)
    meeting_id = upload(client, spoken_wav)
    wait_for_status(
        client, meeting_id, {"transcribing"}, timeout=30, workers=[first], interval=0.02
    )
    first.kill()  # SIGKILL the worker and its pool: no ack, no shutdown handler

    assert meeting(client, meeting_id)["status"] == "transcribing"
    second = start_worker(**timing)
    body = wait_for_status(
        client, meeting_id, {"done", "failed"}, timeout=120, workers=[first, second]
    )
    assert body["status"] == "done", body["error"]
    assert "budget" in body["transcript"]["text"].lower()
    assert count_rows("transcripts") == 1
    assert count_rows("summaries") == 1
    assert count_rows("action_items") == len(body["action_items"]) >= 2
    assert "delivered again (2 of at most 3)" in second.log()
