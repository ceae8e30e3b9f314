"""`inv search.reindex`: done meetings without embeddings are queued for the workers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from ops import search
from ops.env import setup
from ops.environment import Environment
from ops.errors import OpsError


def add_meeting(database_url: str, status: str, *, chunk: bool = False) -> uuid.UUID:
    meeting_id = uuid.uuid4()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO meetings (id, title, status, media_filename, content_type, "
                "size_bytes) VALUES (:id, 't', :s, :f, 'audio/wav', 1)"
            ),
            {"id": meeting_id, "s": status, "f": f"{meeting_id.hex}.wav"},
        )
        if chunk:
            vector = "[" + ",".join(["0.05"] * 384) + "]"
            conn.execute(
                text(
                    "INSERT INTO transcript_chunks (meeting_id, position, segment_position, "
                    "start_seconds, end_seconds, text, model, embedding) VALUES "
                    "(:id, 0, 0, 0, 1, 'x', 'm', CAST(:v AS vector))"
                ),
                {"id": meeting_id, "v": vector},
            )
    engine.dispose()
    return meeting_id


@pytest.fixture
def env(scratch_root: Path, database_url: str, redis_url: str) -> Environment:
    environment = Environment.parse("dev")
    setup(environment)
    path = environment.env_file
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.startswith(("DATABASE_URL=", "REDIS_URL="))
    ]
    lines += [f"DATABASE_URL={database_url}", f"REDIS_URL={redis_url}"]
    path.write_text("\n".join(lines) + "\n")
    return environment


def queued(redis_url: str) -> list[tuple[str, str, dict[str, object]]]:
    client = redis.Redis.from_url(redis_url)
    try:
        messages = [json.loads(raw) for raw in client.lrange("analyze", 0, -1)]
    finally:
        client.close()
    found = []
    for message in messages:
        args, kwargs, _ = json.loads(__import__("base64").b64decode(message["body"]))
        found.append((message["headers"]["task"], args[0], kwargs))
    return found


def test_only_done_meetings_without_embeddings_are_queued(
    env: Environment, database_url: str, redis_url: str
) -> None:
    missing = add_meeting(database_url, "done")
    add_meeting(database_url, "done", chunk=True)
    add_meeting(database_url, "failed")
    assert search.reindex(env) == 1
    assert queued(redis_url) == [("meetings.embed", str(missing), {"replace": False})]

    assert search.reindex(env, everything=True) == 2  # after a model change: every done one
    replaced = [kwargs["replace"] for *_, kwargs in queued(redis_url)]
    assert sorted(replaced) == [False, True, True]


def test_nothing_to_do_and_embeddings_off_say_so(
    env: Environment, database_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert search.reindex(env) == 0
    assert "nothing to do" in capsys.readouterr().out
    env.env_file.write_text(env.env_file.read_text() + "SEARCH_EMBEDDINGS=false\n")
    with pytest.raises(OpsError, match="SEARCH_EMBEDDINGS=false") as info:
        search.reindex(env)
    assert "SEARCH_EMBEDDINGS=true" in info.value.fix
