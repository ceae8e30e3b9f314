"""The meetings API against real uvicorn, Postgres and Redis."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb

from backend.config import BackendSettings
from backend.main import create_app
from backend.schemas import MeetingOut, TranscriptOut
from common.database import libpq_url
from meetings.pipeline import PROCESS_MEETING, QUEUE_PIPELINE
from mi_testing import ApiServer, free_port
from mi_testing.objectstore import MediaUnderTest


def queued_tasks(redis_url: str) -> list[tuple[str, list[str]]]:
    """(task name, args) of every message waiting on the pipeline queue."""
    with redis.Redis.from_url(redis_url) as client:
        raw = client.lrange(QUEUE_PIPELINE, 0, -1)
    tasks = []
    for item in raw:
        message = json.loads(item)
        body = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], body[0]))
    return tasks


def media_files(media: MediaUnderTest) -> list[str]:
    """Everything in the store: recordings, and any partial upload left behind."""
    return sorted([*media.names(), *media.leftovers()])


# --- upload -----------------------------------------------------------------------------


def test_upload_stores_file_creates_row_and_enqueues(
    client: httpx.Client, wav: bytes, media: MediaUnderTest, redis_url: str
) -> None:
    reply = client.post(
        "/api/v1/meetings",
        files={"file": ("standup.wav", wav, "application/octet-stream")},
        data={"title": "  Weekly   standup "},
    )
    assert reply.status_code == 202, reply.text
    body = reply.json()
    meeting_id = uuid.UUID(body["id"])
    assert body["status"] == "queued"
    assert reply.headers["location"] == f"/api/v1/meetings/{meeting_id}"

    stored = media_files(media)
    assert len(stored) == 1
    name = stored[0]
    assert name.endswith(".wav")
    assert "standup" not in name  # never the client's file name
    assert media.read(name) == wav

    assert queued_tasks(redis_url) == [(PROCESS_MEETING, [str(meeting_id)])]

    reply = client.get(f"/api/v1/meetings/{meeting_id}")
    MeetingOut.model_validate_json(reply.content)
    meeting = reply.json()
    assert set(meeting) == set(MeetingOut.model_fields)
    assert meeting["title"] == "Weekly standup"
    assert meeting["status"] == "queued"
    assert meeting["original_filename"] == "standup.wav"
    assert meeting["content_type"] == "audio/wav"
    assert meeting["size_bytes"] == len(wav)
    assert meeting["transcript"] is None
    assert meeting["summary"] is None
    assert meeting["action_items"] == []
    assert meeting["error"] is None


def test_title_defaults_to_file_name(client: httpx.Client, wav: bytes) -> None:
    reply = client.post("/api/v1/meetings", files={"file": ("board call.wav", wav)})
    assert reply.status_code == 202
    meeting = client.get(reply.json()["url"]).json()
    assert meeting["title"] == "board call"


def test_path_in_client_file_name_is_ignored(
    client: httpx.Client, wav: bytes, media: MediaUnderTest
) -> None:
    reply = client.post("/api/v1/meetings", files={"file": ("../../etc/passwd.wav", wav)})
    assert reply.status_code == 202
    meeting = client.get(reply.json()["url"]).json()
    assert meeting["original_filename"] == "passwd.wav"
    assert [name for name in media_files(media) if "/" in name or ".." in name] == []
    assert len(media_files(media)) == 1


@pytest.mark.parametrize(
    ("payload", "client_type"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "audio/wav"),  # lies about its type
        (b"%PDF-1.7\n" + b"x" * 500, "application/pdf"),
        (b"hello", "text/plain"),  # shorter than the sniffing window
    ],
)
def test_non_audio_is_415_and_nothing_is_kept(
    client: httpx.Client, media: MediaUnderTest, redis_url: str, payload: bytes, client_type: str
) -> None:
    reply = client.post("/api/v1/meetings", files={"file": ("x.wav", payload, client_type)})
    assert reply.status_code == 415
    assert "WAV" in reply.json()["detail"]
    assert media_files(media) == []
    assert queued_tasks(redis_url) == []
    assert client.get("/api/v1/meetings").json()["total"] == 0


def test_too_large_is_413_without_partial_file(
    client: httpx.Client, wav: bytes, media: MediaUnderTest, settings: BackendSettings
) -> None:
    oversized = wav + b"\x00" * settings.max_upload_bytes
    reply = client.post("/api/v1/meetings", files={"file": ("big.wav", oversized)})
    assert reply.status_code == 413
    assert "MAX_UPLOAD_MB" in reply.json()["detail"]
    assert media_files(media) == []


def test_streamed_upload_stops_at_the_limit(
    api: object, client: httpx.Client, wav: bytes, media: MediaUnderTest, settings: BackendSettings
) -> None:
    """Chunked body without Content-Length: the server must count, refuse and clean up."""
    boundary = "test-boundary-0123"
    sent = 0
    total = settings.max_upload_bytes * 4

    def body() -> object:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        yield wav
        chunk = b"\x00" * 65536
        while sent < total:
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = client.post(
        "/api/v1/meetings",
        content=body(),  # type: ignore[arg-type]
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert reply.status_code == 413
    assert media_files(media) == []
    # and it keeps serving
    assert client.get("/api/v1/meetings").status_code == 200


def test_declared_length_over_limit_is_rejected_before_reading(
    api: ApiServer, settings: BackendSettings
) -> None:
    """Only headers are sent: the 413 must come back without the server waiting for a body."""
    request = (
        "POST /api/v1/meetings HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{api.port}\r\n"
        f"Authorization: Bearer {settings.api_token.get_secret_value()}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {settings.max_upload_bytes * 2}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.parametrize(
    ("kwargs", "status", "hint"),
    [
        ({"files": {"title": (None, "no file")}}, 422, "`file`"),
        ({"data": {"title": "url-encoded"}}, 415, "multipart"),
        ({"files": {"file": ("empty.wav", b"")}}, 422, "empty"),
        ({"files": {"recording": ("a.wav", b"RIFF")}}, 422, "`file`"),
        ({"content": b"raw bytes", "headers": {"Content-Type": "audio/wav"}}, 415, "multipart"),
        ({"json": {"file": "x"}}, 415, "multipart"),
    ],
)
def test_malformed_uploads(
    client: httpx.Client, media: MediaUnderTest, kwargs: dict[str, object], status: int, hint: str
) -> None:
    reply = client.post("/api/v1/meetings", **kwargs)  # type: ignore[arg-type]
    assert reply.status_code == status, reply.text
    assert hint in reply.json()["detail"]
    assert media_files(media) == []


def test_title_too_long_is_422(client: httpx.Client, wav: bytes, media: MediaUnderTest) -> None:
    reply = client.post(
        "/api/v1/meetings", files={"file": ("a.wav", wav)}, data={"title": "x" * 201}
    )
    assert reply.status_code == 422
    assert "200" in reply.json()["detail"]
    assert media_files(media) == []


def test_a_vocabulary_hint_is_kept_with_the_meeting(
    client: httpx.Client, wav: bytes, media: MediaUnderTest
) -> None:
    created = client.post(
        "/api/v1/meetings",
        files={"file": ("a.wav", wav)},
        data={"title": "Sync", "vocabulary": "  Przybylski,\n Kubernetes  "},
    )
    assert created.status_code == 202, created.text
    body = client.get(created.headers["Location"]).json()
    assert body["vocabulary"] == "Przybylski, Kubernetes"
    assert body["progress"] is None  # nothing transcribed yet

    too_long = client.post(
        "/api/v1/meetings", files={"file": ("b.wav", wav)}, data={"vocabulary": "x" * 501}
    )
    assert too_long.status_code == 422
    assert "`vocabulary` is 501 characters; shorten it to at most 500" in too_long.json()["detail"]
    assert len(media_files(media)) == 1  # only the first upload's recording


def test_a_nul_character_in_a_text_field_is_422_and_nothing_is_kept(
    client: httpx.Client, wav: bytes, media: MediaUnderTest
) -> None:
    reply = client.post(
        "/api/v1/meetings", files={"file": ("a.wav", wav)}, data={"title": "budget\x00sync"}
    )
    assert reply.status_code == 422
    assert "`title` holds a NUL character" in reply.json()["detail"]
    assert media_files(media) == []
    search = client.get("/api/v1/search", params={"q": "budget\x00"})
    assert search.status_code == 422


def test_two_file_parts_are_refused(
    client: httpx.Client, wav: bytes, media: MediaUnderTest
) -> None:
    reply = client.post(
        "/api/v1/meetings", files=[("file", ("a.wav", wav)), ("file", ("b.wav", wav))]
    )
    assert reply.status_code == 422
    assert "exactly one" in reply.json()["detail"]
    assert media_files(media) == []


def test_upload_when_broker_is_down_is_503_and_stores_nothing(
    settings: BackendSettings, media: MediaUnderTest, wav: bytes
) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with (
        ApiServer(create_app(broken)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        reply = http.post("/api/v1/meetings", files={"file": ("a.wav", wav)}, headers=headers)
        assert reply.status_code == 503
        assert "retry" in reply.json()["detail"]
        assert http.get("/api/v1/meetings", headers=headers).json()["total"] == 0
    assert media_files(media) == []


# --- read, list, delete -----------------------------------------------------------------


def test_get_returns_transcript_summary_and_action_items(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    meeting_id = add_meeting(
        title="Planning",
        transcript="Alice will send the report. Bob reviews the design",
        summary="Report and design review.",
        action_items=[("Send the report", "Alice", "Friday"), ("Review the design", "Bob", None)],
    )
    reply = client.get(f"/api/v1/meetings/{meeting_id}")
    # Postgres builds this document: it must be exactly the documented MeetingOut schema.
    MeetingOut.model_validate_json(reply.content)
    body = reply.json()
    assert set(body) == set(MeetingOut.model_fields)
    assert set(body["transcript"]) == set(TranscriptOut.model_fields)
    assert body["id"] == str(meeting_id)
    assert body["status"] == "done"
    assert body["transcript"]["text"] == "Alice will send the report. Bob reviews the design"
    assert [s["text"] for s in body["transcript"]["segments"]] == [
        "Alice will send the report",
        "Bob reviews the design",
    ]
    assert body["transcript"]["segments"][1]["start"] == 2.0
    assert body["summary"] == "Report and design review."
    assert body["topics"] == ["budget"]
    assert body["action_items"] == [
        {"text": "Send the report", "owner": "Alice", "due": "Friday"},
        {"text": "Review the design", "owner": "Bob", "due": None},
    ]
    assert body["created_at"].endswith(("Z", "+00:00"))


def test_word_timings_progress_and_language_certainty_are_shown(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID], database_url: str
) -> None:
    meeting_id = add_meeting(title="Words", transcript="Alice will send it", status="analyzing")
    words = [[0.0, 0.4, "Alice", 0.98], [0.4, 0.7, "will", 0.9], [0.7, 1.5, "send it", 0.5]]
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("UPDATE meetings SET progress = 0.5 WHERE id = %s", (meeting_id,))
        conn.execute("UPDATE transcripts SET language_probability = 0.97")
        conn.execute("UPDATE transcript_segments SET words = %s", (Jsonb(words),))
    reply = client.get(f"/api/v1/meetings/{meeting_id}")
    MeetingOut.model_validate_json(reply.content)
    body = reply.json()
    assert body["progress"] == 0.5
    assert body["transcript"]["language_probability"] == 0.97
    (segment,) = body["transcript"]["segments"]
    assert segment["words"][0] == {"start": 0.0, "end": 0.4, "word": "Alice", "probability": 0.98}
    assert [w["word"] for w in segment["words"]] == ["Alice", "will", "send it"]


def test_unknown_meeting_is_404_with_hint(client: httpx.Client) -> None:
    missing = uuid.uuid4()
    for method in ("GET", "DELETE"):
        reply = client.request(method, f"/api/v1/meetings/{missing}")
        assert reply.status_code == 404
        assert str(missing) in reply.json()["detail"]
        assert "GET /api/v1/meetings" in reply.json()["detail"]


def test_malformed_id_is_422(client: httpx.Client) -> None:
    reply = client.get("/api/v1/meetings/not-a-uuid")
    assert reply.status_code == 422
    assert "meeting_id" in reply.json()["detail"]


def test_list_paginates_newest_first_with_total(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [
        add_meeting(title=f"m{i}", created_at=start + timedelta(minutes=i), status="queued")
        for i in range(7)
    ]
    newest_first = [str(i) for i in reversed(ids)]

    seen: list[str] = []
    offset = 0
    while True:
        page = client.get("/api/v1/meetings", params={"limit": 3, "offset": offset}).json()
        assert page["total"] == 7
        assert page["limit"] == 3
        if not page["items"]:
            break
        seen += [item["id"] for item in page["items"]]
        offset += 3
    assert seen == newest_first
    assert "transcript" not in page  # list items stay small


def test_list_filters_by_status(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    add_meeting(title="a", status="done")
    failed = add_meeting(title="b", status="failed")
    page = client.get("/api/v1/meetings", params={"status": "failed"}).json()
    assert page["total"] == 1
    assert [item["id"] for item in page["items"]] == [str(failed)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "sleeping"}, "status"),
    ],
)
def test_list_rejects_bad_params(
    client: httpx.Client, params: dict[str, object], field: str
) -> None:
    reply = client.get("/api/v1/meetings", params=params)  # type: ignore[arg-type]
    assert reply.status_code == 422
    body = reply.json()
    assert field in body["detail"]
    assert "retry" in body["detail"]
    assert body["errors"]


def test_delete_removes_row_results_and_file(
    client: httpx.Client, wav: bytes, media: MediaUnderTest, database_url: str
) -> None:
    created = client.post("/api/v1/meetings", files={"file": ("a.wav", wav)}).json()
    assert len(media_files(media)) == 1

    reply = client.delete(created["url"])
    assert reply.status_code == 204
    assert reply.content == b""
    assert media_files(media) == []
    assert client.get(created["url"]).status_code == 404
    assert client.delete(created["url"]).status_code == 404


def test_delete_cascades_to_results(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID], database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    meeting_id = add_meeting(
        title="x", transcript="one. two", summary="s", action_items=[("do", None, None)]
    )
    assert client.delete(f"/api/v1/meetings/{meeting_id}").status_code == 204
    engine = create_engine(database_url)
    with engine.connect() as conn:
        for table in (
            "transcripts",
            "transcript_segments",
            "summaries",
            "action_items",
            "search_documents",
        ):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0  # noqa: S608
    engine.dispose()


@pytest.mark.slow  # the read pool waits its 5 s connection timeout twice
def test_database_down_is_503_with_hint(
    settings: BackendSettings, media: MediaUnderTest, wav: bytes, tmp_path: Path
) -> None:
    # A socket directory where no Postgres listens: every connection attempt fails.
    gone = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@/nowhere?host={tmp_path}"}
    )
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    with (
        ApiServer(create_app(gone)) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=60) as http,
    ):
        for method, path in [
            ("GET", f"/api/v1/meetings/{uuid.uuid4()}"),
            ("GET", "/api/v1/meetings"),
            ("GET", "/api/v1/search?q=budget"),
        ]:
            reply = http.request(method, path)
            assert reply.status_code == 503, (path, reply.text)
            assert "database is unavailable" in reply.json()["detail"]
        reply = http.post("/api/v1/meetings", files={"file": ("a.wav", wav)})
        assert reply.status_code == 503
        assert http.get("/health/ready").status_code == 503
        assert http.get("/health").status_code == 200
    assert media_files(media) == []


def test_the_meeting_says_which_engine_wrote_the_analysis_and_why_not_the_model(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID], database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    meeting_id = add_meeting(title="Sync", transcript="Alice will send it.", summary="Sent.")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE summaries SET engine = 'extractive', model = 'textrank-v1', note = :n"),
            {"n": "local failed: took longer than 240s (LLM_DEADLINE)"},
        )
    engine.dispose()
    body = client.get(f"/api/v1/meetings/{meeting_id}").json()
    assert body["analysis"] == {
        "engine": "extractive",
        "model": "textrank-v1",
        "note": "local failed: took longer than 240s (LLM_DEADLINE)",
    }
    bare = add_meeting(title="No analysis yet", status="transcribing")
    assert client.get(f"/api/v1/meetings/{bare}").json()["analysis"] is None
