"""The whole pipeline: API upload -> Celery worker subprocess -> real whisper and llm services.

These tests are slow by nature (real speech recognition, real worker processes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mi_testing import ServiceProcess, free_port, speech
from mi_testing.objectstore import MediaUnderTest

pytestmark = pytest.mark.slow

StartWorker = Callable[..., ServiceProcess]


def upload(client: httpx.Client, audio: Path, title: str = "Planning", **fields: str) -> str:
    with audio.open("rb") as file:
        reply = client.post(
            "/api/v1/meetings",
            files={"file": (audio.name, file)},
            data={"title": title, **fields},
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


def test_real_whisper_reports_progress_and_gives_punctuated_text_with_word_timings(
    client: httpx.Client,
    start_worker: StartWorker,
    planning_meeting_wav: Path,
    faster_whisper_target: str,
) -> None:
    worker = start_worker(WHISPER_URL=faster_whisper_target)
    meeting_id = upload(client, planning_meeting_wav, title="Budget planning")
    seen: list[float] = []
    deadline = time.monotonic() + 180
    while (body := meeting(client, meeting_id))["status"] not in {"done", "failed"}:
        if body["status"] == "transcribing" and body["progress"] is not None:
            seen.append(body["progress"])
        if time.monotonic() > deadline:
            pytest.fail(f"meeting stuck in {body['status']}:\n{worker.log()[-4000:]}")
        time.sleep(0.05)

    assert body["status"] == "done", body["error"]
    assert any(0 < p < 1 for p in seen), f"no progress between start and end was shown: {seen}"
    assert seen == sorted(seen), "progress only moves forward"
    assert body["progress"] == 1.0
    transcript = body["transcript"]
    assert transcript["engine"] == "faster-whisper"
    assert transcript["language"] == "en" and transcript["language_probability"] > 0.5
    # Close to what was said (0.07 measured), punctuated and capitalised, nothing lost.
    text = transcript["text"]
    assert speech.word_error_rate(speech.PLANNING_MEETING, text) <= 0.15, text
    assert re.search(r"Alice will send (?:a|the) budget report,? by Friday\.", text), text
    sentences = re.findall(r"(?:^|(?<=[.?!] ))[A-Z][^.?!]*[.?!]", text)
    assert len(sentences) >= 8, f"of 9 sentences said: {text}"
    for segment in transcript["segments"]:
        words = segment["words"]
        assert words and all(segment["start"] - 0.5 <= w["start"] <= w["end"] for w in words)
        # The words spell the segment (spacing aside: "10" and "%" are two words of "10%").
        spelled = "".join("".join(w["word"] for w in words).split())
        assert spelled in "".join(segment["text"].split()), segment
    due = {item["owner"]: item["due"] for item in body["action_items"]}
    assert due.get("Alice") == "Friday" and due.get("Bob") == "next week", body["action_items"]


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
    timing = {
        "WORKER_VISIBILITY_TIMEOUT": "10",
        "WORKER_TIME_LIMIT": "9",
        "WORKER_SOFT_TIME_LIMIT": "8",
        "WORKER_RETRY_BACKOFF_MAX": "1",
    }
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


def test_queues_let_transcription_and_analysis_scale_separately(
    client: httpx.Client,
    start_worker: StartWorker,
    spoken_wav: Path,
    redis_url: str,
) -> None:
    import redis

    dispatcher = start_worker("--queues", "pipeline")
    meeting_id = upload(client, spoken_wav)
    with redis.Redis.from_url(redis_url) as broker:
        dispatcher.wait_until(
            lambda: broker.llen("transcribe") == 1, timeout=30, what="a task on `transcribe`"
        )
    time.sleep(0.5)
    assert meeting(client, meeting_id)["status"] == "queued"  # nobody consumes `transcribe`

    transcriber = start_worker("--queues", "transcribe")
    body = wait_for_status(
        client, meeting_id, {"analyzing"}, timeout=60, workers=[dispatcher, transcriber]
    )
    assert body["transcript"] is not None
    time.sleep(0.5)
    assert meeting(client, meeting_id)["status"] == "analyzing"  # nobody consumes `analyze`

    analyst = start_worker("--queues", "analyze")
    body = wait_for_status(
        client, meeting_id, {"done"}, timeout=60, workers=[dispatcher, transcriber, analyst]
    )
    assert body["action_items"]
    assert "Task meetings.transcribe[" in transcriber.log()
    assert "Task meetings.analyze[" not in transcriber.log()
    assert "Task meetings.analyze[" in analyst.log()
    assert "Task meetings.transcribe[" not in analyst.log()


def test_killed_pool_process_is_requeued_at_once(
    client: httpx.Client,
    start_worker: StartWorker,
    long_spoken_wav: Path,
    count_rows: Callable[[str], int],
) -> None:
    """Only the pool child dies (as with the OOM killer): the main process requeues the
    message immediately (task_reject_on_worker_lost), without waiting for visibility."""
    import psutil

    worker = start_worker("--concurrency", "1")  # default visibility timeout: 75 s
    meeting_id = upload(client, long_spoken_wav)
    wait_for_status(
        client, meeting_id, {"transcribing"}, timeout=30, workers=[worker], interval=0.02
    )
    children = psutil.Process(worker.pid).children()
    assert len(children) == 1
    children[0].kill()

    started = time.monotonic()
    body = wait_for_status(client, meeting_id, {"done", "failed"}, timeout=60, workers=[worker])
    assert body["status"] == "done", body["error"]
    assert time.monotonic() - started < 60
    assert count_rows("transcripts") == 1
    assert "delivered again (2 of at most 3)" in worker.log()


def test_a_message_that_keeps_killing_workers_fails_the_meeting(
    client: httpx.Client,
    start_worker: StartWorker,
    long_spoken_wav: Path,
) -> None:
    import psutil

    worker = start_worker("--concurrency", "1", WORKER_MAX_DELIVERIES="1")
    meeting_id = upload(client, long_spoken_wav)
    wait_for_status(
        client, meeting_id, {"transcribing"}, timeout=30, workers=[worker], interval=0.02
    )
    psutil.Process(worker.pid).children()[0].kill()

    body = wait_for_status(client, meeting_id, {"done", "failed"}, timeout=60, workers=[worker])
    assert body["status"] == "failed"
    assert body["error"].startswith("transcription: the worker died 1 times"), body["error"]


def test_soft_time_limit_fails_the_meeting_with_the_reason(
    client: httpx.Client, start_worker: StartWorker, long_spoken_wav: Path
) -> None:
    # Transcribing 40 s of speech takes seconds here; dispatching takes milliseconds.
    worker = start_worker("--concurrency", "1", WORKER_SOFT_TIME_LIMIT="1", WORKER_TIME_LIMIT="20")
    meeting_id = upload(client, long_spoken_wav)
    body = wait_for_status(client, meeting_id, {"done", "failed"}, timeout=60, workers=[worker])
    assert body["status"] == "failed"
    assert body["error"].startswith("transcription: took longer than 1s (WORKER_SOFT_TIME_LIMIT)")
    assert worker.alive()


@pytest.mark.objectstore  # `nox -s s3` (with a bucket); the step tests cover it by default
def test_a_recording_deleted_behind_the_apps_back_fails_that_meeting_only(
    client: httpx.Client, start_worker: StartWorker, spoken_wav: Path, media: MediaUnderTest
) -> None:
    gone_id = upload(client, spoken_wav, title="Gone")
    (name,) = media.names()
    media.remove(name)  # an operator cleaning the bucket (or MEDIA_DIR) by hand
    kept_id = upload(client, spoken_wav, title="Kept")
    worker = start_worker()

    gone = wait_for_status(client, gone_id, {"done", "failed"}, timeout=120, workers=[worker])
    assert gone["status"] == "failed"
    assert gone["error"].startswith(f"transcription: the recording {name} is missing from")
    kept = wait_for_status(client, kept_id, {"done", "failed"}, timeout=120, workers=[worker])
    assert kept["status"] == "done", kept["error"]
    assert worker.alive()
    assert "Traceback" not in worker.log()
