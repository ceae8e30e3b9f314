"""The ollama engine and `auto` selection against a fake Ollama speaking its HTTP protocol."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_service.config import LLMSettings
from llm_service.engines.ollama.chunking import chunk_text
from llm_service.engines.ollama.client import model_present
from llm_service.main import create_app

TRANSCRIPT = "Alice: Let's ship on Friday. Bob: I'll update the changelog by Thursday."


@pytest.fixture
def service() -> Iterator[Callable[..., Any]]:
    """Start the app against a given Ollama URL; settings overridable per test."""
    stack: list[Any] = []

    def start(ollama_url: str, **overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "llm_engine": "ollama",
            "ollama_url": ollama_url,
            "ollama_timeout": 5.0,
            "ollama_retries": 2,
            # These tests are about the errors; falling back to extractive is tested apart.
            "llm_fallback": False,
        }
        values.update(overrides)
        probe_ttl = values.pop("probe_ttl", 15.0)
        app = create_app(LLMSettings(**values), ollama_backoff=0.01, probe_ttl=probe_ttl)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return client

    yield start
    for client in reversed(stack):
        client.__exit__(None, None, None)


def test_valid_reply_is_mapped_and_the_request_follows_the_protocol(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.enqueue(
        fake_ollama.analysis(
            summary="  The team will ship on Friday.  ",
            action_items=[
                {"text": "Update the changelog", "owner": "Bob", "due": "Thursday"},
                {"text": "Tell support", "owner": "None", "due": ""},
            ],
            topics=["release", ""],
        )
    )
    client = service(fake_ollama.url)
    response = client.post(
        "/v1/analyze", json={"text": TRANSCRIPT, "language": "en", "reference_date": "2025-02-26"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "summary": "The team will ship on Friday.",
        "action_items": [
            {
                "text": "Update the changelog",
                "owner": "Bob",
                "due": "Thursday",
                "due_date": "2025-02-27",
            },
            {"text": "Tell support", "owner": None, "due": None, "due_date": None},
        ],
        "topics": ["release"],
        "engine": "ollama",
        "model": "llama3.2:3b",
        "note": None,
    }
    [request] = fake_ollama.chat_requests
    assert request["model"] == "llama3.2:3b"
    assert request["stream"] is False
    schema = request["format"]
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"summary", "action_items", "topics"}
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    item_schema = schema["properties"]["action_items"]["items"]
    assert set(item_schema["properties"]) == {"text", "owner", "due"}
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert TRANSCRIPT in request["messages"][1]["content"]
    assert "'en'" in request["messages"][0]["content"]
    assert request["options"]["temperature"] == 0
    assert request["options"]["num_ctx"] >= 4096


@pytest.mark.parametrize(
    "bad",
    [
        "this is not JSON at all",
        '{"summary": "ok", "action_items": "none", "topics": []}',
        '{"summary": "", "action_items": [], "topics": []}',
        '{"action_items": [], "topics": []}',
        '{"summary": "ok", "action_items": [{"owner": "Bob"}], "topics": []}',
    ],
)
def test_invalid_reply_is_retried_then_a_502(
    fake_ollama: Any, service: Callable[..., TestClient], bad: str
) -> None:
    fake_ollama.default = lambda _request: fake_ollama.content(bad)
    client = service(fake_ollama.url, ollama_retries=2)
    response = client.post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert "did not reply with the expected JSON after 3 attempts" in detail
    assert len(fake_ollama.chat_requests) == 3  # first try + OLLAMA_RETRIES


def test_reply_without_done_is_not_passed_on(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    unfinished = fake_ollama.analysis()
    unfinished.body["done"] = False
    fake_ollama.default = lambda _request: unfinished
    response = service(fake_ollama.url, ollama_retries=0).post(
        "/v1/analyze", json={"text": TRANSCRIPT}
    )
    assert response.status_code == 502
    assert "done is not true" in response.json()["detail"]


def test_invalid_then_valid_reply_succeeds(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.enqueue(fake_ollama.content('{"summary": 1'), fake_ollama.analysis(summary="Fine."))
    response = service(fake_ollama.url).post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 200
    assert response.json()["summary"] == "Fine."
    assert len(fake_ollama.chat_requests) == 2


def test_timeout_is_retried_then_a_504(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.default = lambda _request: fake_ollama.slow(3.0)
    client = service(fake_ollama.url, ollama_timeout=0.3, ollama_retries=1)
    response = client.post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 504
    detail = response.json()["detail"]
    assert "within 0.3s (OLLAMA_TIMEOUT) after 2 attempts" in detail
    assert len(fake_ollama.chat_requests) == 2
    assert client.get("/health").status_code == 200  # the service is still serving


def test_server_error_is_retried_then_a_502(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.default = lambda _r: fake_ollama.failure(500, "llama runner process has terminated")
    response = service(fake_ollama.url, ollama_retries=2).post(
        "/v1/analyze", json={"text": TRANSCRIPT}
    )
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert "HTTP 500 after 3 attempts" in detail
    assert "llama runner process has terminated" in detail
    assert len(fake_ollama.chat_requests) == 3


def test_server_error_then_success(fake_ollama: Any, service: Callable[..., TestClient]) -> None:
    fake_ollama.enqueue(fake_ollama.failure(503, "server busy"), fake_ollama.analysis())
    response = service(fake_ollama.url).post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 200
    assert len(fake_ollama.chat_requests) == 2


def test_missing_model_is_a_503_that_says_how_to_pull_it(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    client = service(fake_ollama.url, ollama_model="mistral:7b")
    response = client.post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "ollama pull mistral:7b" in detail
    assert "inv models.pull" in detail
    assert fake_ollama.chat_requests == []  # a 404 is not retried


def test_unreachable_ollama_is_a_503(dead_url: str, service: Callable[..., TestClient]) -> None:
    response = service(dead_url, ollama_retries=1).post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 503
    assert "not reachable after 2 attempts" in response.json()["detail"]


def _part(request: dict[str, Any]) -> int:
    match = re.search(r"This is part (\d+) of \d+", request["messages"][1]["content"])
    assert match, "every chunk says which part it is"
    return int(match.group(1))


def test_long_transcript_is_chunked_mapped_and_reduced(
    fake_ollama: Any, service: Callable[..., TestClient], transcripts: dict[str, str]
) -> None:
    text = transcripts["product_planning"]
    chunk_chars = 1000
    expected_chunks = len(chunk_text(text, chunk_chars))
    assert expected_chunks >= 3

    def scripted(request: dict[str, Any]) -> Any:
        if "action_items" not in request["format"]["properties"]:  # the reduce call
            return fake_ollama.analysis(summary="The whole meeting, merged.")
        part = _part(request)
        items = [{"text": f"Follow up on part {part}", "owner": "Alice", "due": None}]
        # The same item in every chunk, its due date only said in the last one.
        last = part == expected_chunks
        items.append(
            {"text": "Send the agenda", "owner": "Alice", "due": "Friday" if last else None}
        )
        return fake_ollama.analysis(
            summary=f"Summary of part {part}.",
            action_items=items,
            topics=[f"topic {part}", "release"],
        )

    fake_ollama.default = scripted
    client = service(fake_ollama.url, llm_chunk_chars=chunk_chars, llm_max_chars=50_000)
    response = client.post("/v1/analyze", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()

    map_calls = [
        r for r in fake_ollama.chat_requests if "action_items" in r["format"]["properties"]
    ]
    reduce_calls = [r for r in fake_ollama.chat_requests if r not in map_calls]
    assert len(map_calls) == expected_chunks
    assert len(reduce_calls) == 1
    # Nothing was truncated: the chunks sent hold every word of the transcript.
    sent = " ".join(
        r["messages"][1]["content"].split("Transcript:\n", 1)[1]
        for r in sorted(map_calls, key=_part)
    )
    assert sent.split() == text.split()
    for part in range(1, expected_chunks + 1):
        assert f"Summary of part {part}." in reduce_calls[0]["messages"][1]["content"]

    assert body["summary"] == "The whole meeting, merged."
    texts = [item["text"] for item in body["action_items"]]
    assert texts.count("Send the agenda") == 1
    assert {f"Follow up on part {p}" for p in range(1, expected_chunks + 1)} <= set(texts)
    agenda = next(i for i in body["action_items"] if i["text"] == "Send the agenda")
    assert agenda["due"] == "Friday"
    assert body["topics"][0] == "release"  # named by every chunk
    assert len(body["topics"]) <= 6


def test_auto_uses_ollama_when_it_answers_with_the_model(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    client = service(fake_ollama.url, llm_engine="auto")
    first = client.post("/v1/analyze", json={"text": TRANSCRIPT}).json()
    second = client.post("/v1/analyze", json={"text": TRANSCRIPT}).json()
    assert (first["engine"], first["model"]) == ("ollama", "llama3.2:3b")
    assert second["engine"] == "ollama"
    assert fake_ollama.tags_requests == 1  # the decision is cached between requests


def test_auto_probes_again_when_the_cache_expires(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    client = service(fake_ollama.url, llm_engine="auto", probe_ttl=0.0)
    client.post("/v1/analyze", json={"text": TRANSCRIPT})
    fake_ollama.models = ["some-other-model:latest"]  # the model was removed meanwhile
    body = client.post("/v1/analyze", json={"text": TRANSCRIPT}).json()
    assert body["engine"] == "extractive"
    assert fake_ollama.tags_requests == 2


def test_auto_falls_back_to_extractive_without_ollama(
    dead_url: str, service: Callable[..., TestClient]
) -> None:
    client = service(dead_url, llm_engine="auto")
    response = client.post("/v1/analyze", json={"text": TRANSCRIPT})
    assert response.status_code == 200
    assert (response.json()["engine"], response.json()["model"]) == ("extractive", "textrank-v1")


def test_auto_falls_back_when_the_model_is_not_pulled(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.models = ["qwen2.5:0.5b"]
    body = (
        service(fake_ollama.url, llm_engine="auto")
        .post("/v1/analyze", json={"text": TRANSCRIPT})
        .json()
    )
    assert body["engine"] == "extractive"
    assert fake_ollama.chat_requests == []


def test_auto_falls_back_when_ollama_loses_the_model_mid_request(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.enqueue(fake_ollama.failure(404, "model 'llama3.2:3b' not found"))
    body = (
        service(fake_ollama.url, llm_engine="auto")
        .post("/v1/analyze", json={"text": TRANSCRIPT})
        .json()
    )
    assert body["engine"] == "extractive"
    assert len(fake_ollama.chat_requests) == 1


def test_auto_reports_invalid_replies_instead_of_hiding_them(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.default = lambda _request: fake_ollama.content("[]")
    response = service(fake_ollama.url, llm_engine="auto", ollama_retries=0).post(
        "/v1/analyze", json={"text": TRANSCRIPT}
    )
    assert response.status_code == 502


def test_with_fallback_an_invalid_model_is_replaced_by_extractive_saying_why(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.default = lambda _request: fake_ollama.content("[]")
    response = service(fake_ollama.url, ollama_retries=1, llm_fallback=True).post(
        "/v1/analyze", json={"text": TRANSCRIPT}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["engine"] == "extractive"
    assert body["note"].startswith("ollama failed: model 'llama3.2:3b' did not reply with the")
    assert "after 2 attempts" in body["note"]
    assert body["action_items"] and body["model"] == "textrank-v1"


def test_ready_when_ollama_has_the_model(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    response = service(fake_ollama.url).get("/health/ready")
    assert response.status_code == 200
    check = response.json()["checks"]["ollama"]
    assert check["ok"] is True
    assert check["required"] is True


def test_not_ready_without_the_model_says_how_to_pull_it(
    fake_ollama: Any, service: Callable[..., TestClient]
) -> None:
    fake_ollama.models = ["llama3.1:8b"]
    response = service(fake_ollama.url).get("/health/ready")
    assert response.status_code == 503
    detail = response.json()["checks"]["ollama"]["detail"]
    assert "inv models.pull" in detail
    assert "ollama pull llama3.2:3b" in detail


def test_not_ready_without_ollama(dead_url: str, service: Callable[..., TestClient]) -> None:
    response = service(dead_url).get("/health/ready")
    assert response.status_code == 503
    assert "ollama serve" in response.json()["checks"]["ollama"]["detail"]


def test_auto_is_ready_without_ollama_and_says_so(
    dead_url: str, service: Callable[..., TestClient]
) -> None:
    response = service(dead_url, llm_engine="auto").get("/health/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["extractive"]["ok"] is True
    assert (checks["ollama"]["ok"], checks["ollama"]["required"]) == (False, False)


def test_engines_endpoint_reflects_ollama(
    fake_ollama: Any, dead_url: str, service: Callable[..., TestClient]
) -> None:
    auto = service(fake_ollama.url, llm_engine="auto").get("/v1/engines").json()
    assert (auto["configured"], auto["selected"]) == ("auto", "ollama")
    assert {e["name"]: e["available"] for e in auto["engines"]} == {
        "extractive": True,
        "ollama": True,
        "openai": False,  # OPENAI_BASE_URL is not set
    }
    down = service(dead_url, llm_engine="ollama").get("/v1/engines").json()
    assert (down["configured"], down["selected"]) == ("ollama", None)


@pytest.mark.parametrize(
    ("wanted", "available", "present"),
    [
        ("llama3.2", ["llama3.2:latest"], True),
        ("llama3.2:latest", ["llama3.2"], True),
        ("llama3.2:3b", ["llama3.2:3b"], True),
        ("llama3.2:3b", ["llama3.2:latest"], False),
        ("llama3.2", ["llama3.2:1b"], False),
    ],
)
def test_model_names_match_like_ollama(wanted: str, available: list[str], present: bool) -> None:
    assert model_present(wanted, available) is present


def test_many_chunk_summaries_are_merged_in_rounds(
    fake_ollama: Any, service: Callable[..., TestClient], transcripts: dict[str, str]
) -> None:
    text = transcripts["incident_review"]
    chunk_chars = 400
    chunks = len(chunk_text(text, chunk_chars))
    merged_rounds: list[str] = []

    def scripted(request: dict[str, Any]) -> Any:
        if "action_items" in request["format"]["properties"]:
            return fake_ollama.analysis(summary=f"Summary of part {_part(request)}.".ljust(60, "~"))
        merged_rounds.append(request["messages"][1]["content"])
        return fake_ollama.analysis(summary=f"Merged {len(merged_rounds)}.".ljust(60, "~"))

    fake_ollama.default = scripted
    client = service(fake_ollama.url, llm_chunk_chars=chunk_chars, llm_max_chars=50_000)
    body = client.post("/v1/analyze", json={"text": text}).json()
    # 60-character summaries of many chunks exceed one 400-character context: merged in
    # groups first, then the group summaries once more.
    assert chunks * 60 > chunk_chars
    assert len(merged_rounds) >= 3
    assert "Summary of part" not in merged_rounds[-1]
    assert body["summary"] == f"Merged {len(merged_rounds)}.".ljust(60, "~")
