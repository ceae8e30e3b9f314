"""`POST /api/v1/meetings/{id}/retry`: a failed meeting runs again; anything else is refused."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable

import httpx
import redis
from sqlalchemy import create_engine, text

from backend.config import BackendSettings
from backend.main import create_app
from meetings.pipeline import PROCESS_MEETING, QUEUE_PIPELINE
from mi_testing import ApiServer, free_port


def queued(redis_url: str) -> list[tuple[str, list[str]]]:
    with redis.Redis.from_url(redis_url) as client:
        raw = client.lrange(QUEUE_PIPELINE, 0, -1)
    found = []
    for item in raw:
        message = json.loads(item)
        found.append((message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]))
    return found


def fail(database_url: str, meeting_id: uuid.UUID, recoveries: int = 0) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE meetings SET status = 'failed', error = 'analysis: gave up', "
                "completed_at = now(), recoveries = :r WHERE id = :id"
            ),
            {"id": meeting_id, "r": recoveries},
        )
    engine.dispose()


def row(database_url: str, meeting_id: uuid.UUID) -> dict[str, object]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT status, error, completed_at, recoveries FROM meetings WHERE id = :id"),
            {"id": meeting_id},
        ).one()
    engine.dispose()
    return dict(found._mapping)


def test_a_failed_meeting_is_queued_again_keeping_its_transcript(
    client: httpx.Client,
    add_meeting: Callable[..., uuid.UUID],
    database_url: str,
    redis_url: str,
) -> None:
    meeting_id = add_meeting(title="Planning", transcript="Alice sends the report.", status="done")
    fail(database_url, meeting_id, recoveries=3)

    reply = client.post(f"/api/v1/meetings/{meeting_id}/retry")

    assert reply.status_code == 202, reply.text
    assert reply.json() == {
        "id": str(meeting_id),
        "status": "queued",
        "url": f"/api/v1/meetings/{meeting_id}",
    }
    assert reply.headers["location"] == f"/api/v1/meetings/{meeting_id}"
    assert queued(redis_url) == [(PROCESS_MEETING, [str(meeting_id)])]
    assert row(database_url, meeting_id) == {
        "status": "queued",
        "error": None,
        "completed_at": None,
        "recoveries": 0,
    }
    meeting = client.get(f"/api/v1/meetings/{meeting_id}").json()
    assert meeting["transcript"]["text"] == "Alice sends the report."


def test_a_meeting_that_is_not_failed_is_409_and_left_alone(
    client: httpx.Client,
    add_meeting: Callable[..., uuid.UUID],
    database_url: str,
    redis_url: str,
) -> None:
    for status, says in (
        ("done", "it is done; nothing to retry"),
        ("queued", "it is still being processed"),
        ("transcribing", "it is still being processed"),
        ("analyzing", "it is still being processed"),
    ):
        meeting_id = add_meeting(title=status, status=status)
        reply = client.post(f"/api/v1/meetings/{meeting_id}/retry")
        assert reply.status_code == 409, reply.text
        detail = reply.json()["detail"]
        assert f"is {status}: only a failed meeting can be retried" in detail
        assert says in detail
        assert row(database_url, meeting_id)["status"] == status
    assert queued(redis_url) == []


def test_an_unknown_meeting_is_404(client: httpx.Client) -> None:
    unknown = uuid.uuid4()
    reply = client.post(f"/api/v1/meetings/{unknown}/retry")
    assert reply.status_code == 404
    assert "GET /api/v1/meetings" in reply.json()["detail"]
    assert client.post("/api/v1/meetings/not-an-id/retry").status_code == 422


def test_without_the_broker_it_is_503_and_stays_failed(
    settings: BackendSettings, add_meeting: Callable[..., uuid.UUID], database_url: str
) -> None:
    meeting_id = add_meeting(title="Planning", status="done")
    fail(database_url, meeting_id)
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    with (
        ApiServer(create_app(broken)) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=60) as http,
    ):
        reply = http.post(f"/api/v1/meetings/{meeting_id}/retry")
    assert reply.status_code == 503
    assert "stays failed" in reply.json()["detail"]
    after = row(database_url, meeting_id)
    assert after["status"] == "failed"
    assert after["error"] == "analysis: gave up"
    assert after["completed_at"] is not None


def test_retry_is_in_the_openapi_schema(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/meetings/{meeting_id}/retry"]["post"]
    assert set(operation["responses"]) >= {"202", "404", "409", "422", "503"}
    created = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/MeetingCreated"}
    assert "failed" in operation["description"]
