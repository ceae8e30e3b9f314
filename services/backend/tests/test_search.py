"""Full-text search: ranking, highlighting, syntax and bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

AddMeeting = Callable[..., uuid.UUID]


@pytest.fixture
def corpus(add_meeting: AddMeeting) -> dict[str, uuid.UUID]:
    return {
        "strong": add_meeting(
            title="Budget review",
            summary="The budget for next quarter was approved after a budget discussion.",
            transcript="We went through the budget line by line. The budget is tight.",
        ),
        "weak": add_meeting(
            title="Design sync",
            summary="The team reviewed the new onboarding design.",
            transcript="Someone mentioned the budget once. Mostly we talked about colours.",
        ),
        "unrelated": add_meeting(
            title="Hiring",
            summary="Two candidates for the platform role.",
            transcript="Interviews are scheduled for Tuesday and Thursday.",
        ),
    }


def search(client: httpx.Client, q: str, **params: object) -> dict[str, object]:
    reply = client.get("/api/v1/search", params={"q": q, **params})  # type: ignore[arg-type]
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body


def test_stronger_match_ranks_first(client: httpx.Client, corpus: dict[str, uuid.UUID]) -> None:
    body = search(client, "budget")
    items = body["items"]
    assert isinstance(items, list)
    assert [item["id"] for item in items] == [str(corpus["strong"]), str(corpus["weak"])]
    assert body["total"] == 2
    assert items[0]["rank"] > items[1]["rank"] > 0
    assert items[0]["title"] == "Budget review"


def test_snippets_highlight_matches(client: httpx.Client, corpus: dict[str, uuid.UUID]) -> None:
    items = search(client, "budgets")["items"]  # stemming: budgets -> budget
    assert isinstance(items, list)
    assert items
    for item in items:
        assert "<mark>budget</mark>" in item["snippet"].lower()


def test_websearch_syntax(client: httpx.Client, corpus: dict[str, uuid.UUID]) -> None:
    items = search(client, "budget -colours")["items"]
    assert isinstance(items, list)
    assert [i["id"] for i in items] == [str(corpus["strong"])]
    items = search(client, '"onboarding design" or interviews')["items"]
    assert isinstance(items, list)
    assert {i["id"] for i in items} == {str(corpus["weak"]), str(corpus["unrelated"])}


def test_no_match_and_stopwords_only(client: httpx.Client, corpus: dict[str, uuid.UUID]) -> None:
    assert search(client, "kubernetes")["items"] == []
    body = search(client, "the and of")  # only stopwords: an empty query, not an error
    assert body["items"] == []
    assert body["total"] == 0


def test_pagination_reports_total(client: httpx.Client, corpus: dict[str, uuid.UUID]) -> None:
    first = search(client, "budget", limit=1)
    second = search(client, "budget", limit=1, offset=1)
    beyond = search(client, "budget", limit=1, offset=5)
    assert first["total"] == second["total"] == beyond["total"] == 2
    assert first["items"] != second["items"]
    assert beyond["items"] == []


def test_snippet_is_html_escaped(client: httpx.Client, add_meeting: AddMeeting) -> None:
    add_meeting(title="x", summary="s", transcript="keep costs < 5 & meet the deadline today")
    items = search(client, "deadline")["items"]
    assert isinstance(items, list)
    snippet = items[0]["snippet"]
    assert "&lt; 5 &amp; meet" in snippet
    assert "<mark>deadline</mark>" in snippet
    assert "<" not in snippet.replace("<mark>", "").replace("</mark>", "")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "a", "limit": 0},
        {"q": "a", "limit": 51},
    ],
)
def test_bad_search_params_are_422(client: httpx.Client, params: dict[str, object]) -> None:
    reply = client.get("/api/v1/search", params=params)  # type: ignore[arg-type]
    assert reply.status_code == 422
    assert "q" in reply.json()["detail"] or "limit" in reply.json()["detail"]
