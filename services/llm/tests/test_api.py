"""The HTTP contract through FastAPI's TestClient (engine: extractive, Ollama absent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from llm_service.config import LLMSettings
from llm_service.main import create_app


@pytest.fixture
def client(dead_url: str) -> Iterator[TestClient]:
    settings = LLMSettings(llm_engine="extractive", ollama_url=dead_url, llm_max_chars=5000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_analyze_returns_the_contract(client: TestClient, transcripts: dict[str, str]) -> None:
    response = client.post(
        "/v1/analyze",
        json={"text": transcripts["product_planning"], "reference_date": "2025-02-26"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"summary", "action_items", "topics", "engine", "model", "note"}
    assert body["note"] is None
    assert (body["engine"], body["model"]) == ("extractive", "textrank-v1")
    assert body["summary"]
    assert "release" in body["topics"]
    bob = next(item for item in body["action_items"] if item["owner"] == "Bob")
    assert bob == {
        "text": "Record the demo video",
        "owner": "Bob",
        "due": "next Monday",
        "due_date": "2025-03-03",
    }


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_blank_text_is_a_clear_422(client: TestClient, text: str) -> None:
    response = client.post("/v1/analyze", json={"text": text})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "text"]
    assert "empty or only whitespace" in error["msg"]


def test_too_long_text_is_a_clear_422_and_the_service_keeps_serving(client: TestClient) -> None:
    response = client.post("/v1/analyze", json={"text": "Alice will send it. " * 300})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "text"]
    assert "6000 characters" in error["msg"]
    assert "LLM_MAX_CHARS" in error["msg"]
    ok = client.post("/v1/analyze", json={"text": "Alice will send the agenda by Friday."})
    assert ok.status_code == 200
    assert ok.json()["action_items"][0]["owner"] == "Alice"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": 42}, "text"),
        ({"text": "Hello there.", "language": "english please"}, "language"),
        ({"text": "Hello there.", "reference_date": "next tuesday"}, "reference_date"),
    ],
)
def test_malformed_bodies_name_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/analyze", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_language_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/analyze", json={"text": "Bob will fix it.", "language": "en-GB"})
    assert response.status_code == 200


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["extractive"]["ok"] is True
    assert "ollama" not in ready.json()["checks"]  # not configured, so not checked
    client.post("/v1/analyze", json={"text": "Alice will send the agenda by Friday."})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'route="/v1/analyze"' in metrics.text
    assert 'llm_analyses_total{engine="extractive",outcome="ok"}' in metrics.text


def test_engines_lists_both_and_selects_extractive(client: TestClient) -> None:
    body = client.get("/v1/engines").json()
    assert body["configured"] == "extractive"
    assert body["selected"] == "extractive"
    by_name = {engine["name"]: engine for engine in body["engines"]}
    assert by_name["extractive"]["available"] is True
    assert by_name["ollama"]["available"] is False
    assert "ollama serve" in by_name["ollama"]["detail"]


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/engines", "/health", "/health/ready"} <= set(paths)
