"""A real language model in the loop: our spoken meeting through whisper -> worker -> llm ->
llama.cpp (Qwen2.5-Coder-1.5B, the GGUF models.lock pins), then search and ask over it.

What is asserted is what a model reliably gets right on this meeting (owners and due days,
a schema-valid reply, the right citation), never its wording.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, ServiceProcess, subprocess_env

API_TOKEN = "real-model-token-0123456789"


@pytest.fixture
def worker(
    database_url: str,
    redis_url: str,
    media_dir: Path,
    whisper_target: str,
    local_llm_url: str,
    tmp_path: Path,
) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        [sys.executable, "-m", "worker", f"--hostname=llm-{uuid.uuid4().hex[:6]}@%h",
         "--without-mingle", "--without-gossip"],
        subprocess_env(
            DATABASE_URL=database_url, REDIS_URL=redis_url, MEDIA_DIR=str(media_dir),
            WHISPER_URL=whisper_target, LLM_URL=local_llm_url, LLM_TIMEOUT="300",
            WORKER_SOFT_TIME_LIMIT="600", WORKER_TIME_LIMIT="660",
            WORKER_VISIBILITY_TIMEOUT="900", LOG_JSON="false",
        ),
        tmp_path / "worker.log",
    ).start()  # fmt: skip
    service.wait_until(lambda: " ready." in service.log(), timeout=60, what="worker ready")
    yield service
    service.stop()


@pytest.fixture
def client(
    database_url: str, redis_url: str, media_dir: Path, whisper_target: str, local_llm_url: str
) -> Iterator[httpx.Client]:
    settings = BackendSettings(
        database_url=database_url, redis_url=redis_url, api_token=API_TOKEN,
        media_dir=media_dir, whisper_url=whisper_target, llm_url=local_llm_url,
        ask_timeout_s=240,
    )  # fmt: skip
    with (
        ApiServer(create_app(settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=300
        ) as http,
    ):
        yield http


def wait_done(client: httpx.Client, meeting_id: str, worker: ServiceProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 420
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/meetings/{meeting_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"meeting stuck in {body['status']}:\n{worker.log()[-4000:]}")
        time.sleep(0.5)


def test_the_spoken_meeting_is_analysed_by_the_local_model_then_searchable_and_askable(
    client: httpx.Client, worker: ServiceProcess, spoken_wav: Path, database_url: str
) -> None:
    with spoken_wav.open("rb") as audio:
        reply = client.post("/api/v1/meetings", files={"file": ("m.wav", audio)},
                            data={"title": "Weekly sync"})  # fmt: skip
    assert reply.status_code == 202, reply.text
    meeting_id = reply.json()["id"]
    body = wait_done(client, meeting_id, worker)
    assert body["status"] == "done", body["error"]

    engine = create_engine(database_url)
    with engine.connect() as conn:
        summary = conn.execute(
            text("SELECT engine, model, note FROM summaries WHERE meeting_id = :m"),
            {"m": meeting_id},
        ).one()
    # The embed step runs after the meeting is done: wait for its chunks.
    deadline = time.monotonic() + 60
    chunks = 0
    while not chunks and time.monotonic() < deadline:
        with engine.connect() as conn:
            chunks = conn.execute(
                text("SELECT count(*) FROM transcript_chunks WHERE meeting_id = :m"),
                {"m": meeting_id},
            ).scalar_one()
        time.sleep(0.3)
    engine.dispose()
    # The local model wrote it (no fallback hid a failure), from the locked GGUF.
    assert summary.engine == "local" and summary.note is None, summary
    assert summary.model == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert body["analysis"] == {"engine": "local", "model": summary.model, "note": None}
    assert body["summary"]

    items = {(i["owner"] or "").lower(): i for i in body["action_items"]}
    assert {"alice", "bob"} <= set(items), body["action_items"]
    assert "friday" in (items["alice"]["due"] or "").lower(), items["alice"]
    assert "next week" in (items["bob"]["due"] or "").lower(), items["bob"]
    assert "budget" in items["alice"]["text"].lower()
    assert "design" in items["bob"]["text"].lower()

    # Embedded after it was done: found by meaning, and asked about with a citation.
    assert chunks >= 1
    hits = client.get("/api/v1/search", params={"q": "spending summary due this week"}).json()
    assert hits["note"] is None and hits["items"][0]["id"] == meeting_id
    answer = client.post("/api/v1/ask", json={"question": "Who reviews the design document?"})
    assert answer.status_code == 200, answer.text
    asked = answer.json()
    assert asked["engine"] == "local"
    assert asked["citations"] and asked["citations"][0]["meeting_id"] == meeting_id
    assert asked["citations"][0]["at"]
    if asked["supported"]:
        assert "bob" in asked["answer"].lower(), asked
