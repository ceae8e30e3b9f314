"""The extractive engine on realistic meeting transcripts (tests/fixtures/*.txt)."""

from __future__ import annotations

import datetime as dt

import pytest

from llm_service.engines.extractive import MODEL_NAME, analyze_text
from llm_service.engines.extractive.actions import find_actions
from llm_service.engines.extractive.summarizer import pagerank, summarize
from llm_service.engines.extractive.text import normalize_space, split_sentences

MEETING_DAY = dt.date(2025, 2, 26)  # a Wednesday

# (owner, due as said, a word the task text must contain) per transcript.
EXPECTED_ACTIONS = {
    "product_planning": [
        (None, "March 3rd", "release"),
        ("Bob", "next Monday", "demo video"),
        ("Carol", "tomorrow", "legal"),
        ("Dan", "Wednesday", "vendor"),
        ("Erin", "end of next week", "customer docs"),
        ("Carol", "Thursday", "announcement"),
        ("Alice", "Friday", "agenda"),
        ("Dan", "today", "CSV"),
    ],
    "incident_review": [
        ("Marcus", "Wednesday", "alert"),
        (None, "end of the month", "maintenance window"),
        ("Tom", "next Friday", "linter"),
        ("Tom", "next Tuesday", "connection pool"),
        ("Lena", "the 15th", "handbook"),
        ("Lena", "Thursday afternoon", "walkthrough"),
        ("Lena", "today", "status page"),
        ("Priya", "end of week", "postmortem"),
    ],
    "customer_call": [
        ("Jordan", "Wednesday", "pricing proposal"),
        ("Sam", "tomorrow", "sandbox"),
        ("Nina", None, "API documentation"),
        (None, "end of the month", "data processing agreement"),
        ("Jordan", "Friday", "security questionnaire"),
        ("Nina", "Monday", "check-in call"),
    ],
}
EXPECTED_TOPICS = {
    "product_planning": {"release", "marketing campaign", "budget", "booth", "export"},
    "incident_review": {"database", "migration", "connection pool", "lock", "alert"},
    "customer_call": {
        "integration",
        "depot",
        "rollout",
        "training",
        "API documentation",
        "route planning module",
    },
}
PEOPLE = {"alice", "bob", "carol", "dan", "erin", "priya", "marcus", "tom", "lena", "jordan"}


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_finds_owners_and_due_phrases(transcripts: dict[str, str], name: str) -> None:
    result = analyze_text(transcripts[name], MEETING_DAY)
    found = [(a.owner, a.due, a.text) for a in result.action_items]
    for owner, due, keyword in EXPECTED_ACTIONS[name]:
        matches = [f for f in found if f[0] == owner and f[1] == due and keyword in f[2]]
        assert matches, f"missing ({owner}, {due}, {keyword!r}) in {found}"
    # No more than a couple of extra items beyond the expected ones: precision matters too.
    assert len(found) <= len(EXPECTED_ACTIONS[name]) + 2, found


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_summary_quotes_the_transcript_and_is_shorter(
    transcripts: dict[str, str], name: str
) -> None:
    text = transcripts[name]
    flat = normalize_space(text)
    sentences = split_sentences(text)
    chosen = summarize(sentences)
    assert 3 <= len(chosen) <= 7
    for sentence in chosen:
        assert sentence.text in flat  # drawn from the text, verbatim
    assert [s.index for s in chosen] == sorted(s.index for s in chosen)  # in spoken order
    result = analyze_text(text)
    assert result.summary == " ".join(s.text for s in chosen)
    assert len(result.summary) < len(flat) / 2
    assert result.engine == "extractive"
    assert result.model == MODEL_NAME


@pytest.mark.parametrize("name", sorted(EXPECTED_TOPICS))
def test_topics_are_relevant(transcripts: dict[str, str], name: str) -> None:
    topics = analyze_text(transcripts[name]).topics
    assert 3 <= len(topics) <= 5
    assert len(set(topics) & EXPECTED_TOPICS[name]) >= 3, topics
    assert not {t.lower() for t in topics} & PEOPLE


def test_summary_prefers_central_sentences(transcripts: dict[str, str]) -> None:
    # Small talk never makes it into the summary of the planning meeting.
    summary = analyze_text(transcripts["product_planning"]).summary
    assert "Thanks everyone, see you next week." not in summary
    assert "Sorry I'm late." not in summary
    assert "release" in summary
    assert "marketing campaign" in summary


@pytest.mark.parametrize(
    ("sentence", "owner", "due", "text"),
    [
        ("Alice will send the agenda by Friday.", "Alice", "Friday", "Send the agenda"),
        (
            "Bob, please review the budget before next Monday.",
            "Bob",
            "next Monday",
            "Review the budget",
        ),
        (
            "Action item: Carol to book the room tomorrow.",
            "Carol",
            "tomorrow",
            "Book the room",
        ),
        (
            "We need to ship the release by March 3rd.",
            None,
            "March 3rd",
            "Ship the release",
        ),
        ("Can you update the roadmap, Dave?", "Dave", None, "Update the roadmap"),
        (
            "Okay, so Grace and Heidi will set up the staging cluster by the 15th, right?",
            "Grace and Heidi",
            "the 15th",
            "Set up the staging cluster",
        ),
        ("Frank is responsible for the vendor contract.", "Frank", None, "Own the vendor contract"),
        ("Someone needs to renew the certificate by end of week.", None, "end of week", None),
    ],
)
def test_action_item_phrasings(
    sentence: str, owner: str | None, due: str | None, text: str | None
) -> None:
    [item] = analyze_text(sentence).action_items
    assert (item.owner, item.due) == (owner, due)
    if text:
        assert item.text == text


def test_first_person_commitment_belongs_to_the_speaker() -> None:
    [item] = analyze_text("Erin: I'll draft the proposal by the end of the week.").action_items
    assert (item.owner, item.due, item.text) == ("Erin", "end of the week", "Draft the proposal")
    [unlabelled] = analyze_text("I'll draft the proposal by Thursday.").action_items
    assert unlabelled.owner is None


@pytest.mark.parametrize(
    "sentence",
    [
        "Alice will be out next week.",
        "Let's move on to the next topic.",
        "Should we ship it on Friday?",
        "We don't need to change anything.",
        "The release went out on Monday.",
        "Then let's do that.",
    ],
)
def test_statements_that_are_not_action_items(sentence: str) -> None:
    assert analyze_text(sentence).action_items == []


def test_restated_item_is_kept_once_with_what_the_restatement_adds() -> None:
    text = (
        "Dan will ask the vendor for a quote on the smaller booth. "
        "Right, Dan will ask the vendor for the smaller booth quote by Wednesday."
    )
    [item] = analyze_text(text).action_items
    assert (item.owner, item.due) == ("Dan", "Wednesday")


@pytest.mark.parametrize(
    ("sentence", "due", "iso"),
    [
        ("Alice will send the agenda by Friday.", "Friday", "2025-02-28"),
        ("Alice will send the agenda by next Friday.", "next Friday", "2025-03-07"),
        ("Bob will review it before next Monday.", "next Monday", "2025-03-03"),
        ("Carol will book the room tomorrow.", "tomorrow", "2025-02-27"),
        ("We need to ship the release by March 3rd.", "March 3rd", "2025-03-03"),
        ("We need to ship the release by January 10.", "January 10", "2026-01-10"),
        ("Dan will fix it by end of week.", "end of week", "2025-02-28"),
        ("Dan will fix it by the end of the month.", "end of the month", "2025-02-28"),
        ("Dan will fix it by the end of next month.", "end of next month", "2025-03-31"),
        ("Eve will write the report in two weeks.", "in two weeks", "2025-03-12"),
        ("Eve will write the report by the 15th.", "the 15th", "2025-03-15"),
        ("Eve will write the report by 2025-04-01.", "2025-04-01", "2025-04-01"),
        ("Eve will write the report by EOD.", "EOD", "2025-02-26"),
        ("Eve will write the report next week.", "next week", None),  # vague: not guessed
    ],
)
def test_due_dates_resolve_against_the_meeting_day(
    sentence: str, due: str, iso: str | None
) -> None:
    [item] = analyze_text(sentence, MEETING_DAY).action_items
    assert item.due == due
    assert (item.due_date.isoformat() if item.due_date else None) == iso
    [without_reference] = analyze_text(sentence).action_items
    assert without_reference.due == due
    assert without_reference.due_date is None


def test_recurring_day_is_not_a_deadline() -> None:
    [item] = analyze_text("Let's plan a check-in call every other Thursday.").action_items
    assert item.due is None


def test_sentence_splitting_handles_labels_abbreviations_and_timestamps() -> None:
    text = (
        "[00:00:04] Dr. Smith: We met with Acme Inc. yesterday. It went well, e.g. on price.\n"
        "Action item: J. Doe to send the contract.\n"
        "SPEAKER_01: Sounds good! What about the invoice?"
    )
    sentences = split_sentences(text)
    assert [(s.speaker, s.text) for s in sentences] == [
        ("Dr. Smith", "We met with Acme Inc. yesterday."),
        ("Dr. Smith", "It went well, e.g. on price."),
        ("Dr. Smith", "Action item: J. Doe to send the contract."),
        ("SPEAKER_01", "Sounds good!"),
        ("SPEAKER_01", "What about the invoice?"),
    ]


def test_unpunctuated_asr_text_still_gets_a_quoted_summary() -> None:
    words = (
        "so the main thing today is the warehouse migration and the new scanner rollout "
        "we moved the first warehouse last week and the scanners worked fine "
        "the second warehouse is harder because the network there is old "
        "we need to replace the network switches before the scanner rollout "
    ) * 6
    sentences = split_sentences(words)
    assert len(sentences) > 5  # cut into pseudo-sentences rather than one endless sentence
    chosen = summarize(sentences)
    assert chosen
    assert all(s.text in normalize_space(words) for s in chosen)
    result = analyze_text(words)
    assert len(result.summary) < len(words) / 2
    assert {"scanner rollout", "warehouse"} & set(result.topics)


def test_pagerank_ranks_the_hub_of_a_star_highest() -> None:
    star = [{1: 1.0, 2: 1.0, 3: 1.0}, {0: 1.0}, {0: 1.0}, {0: 1.0}]
    scores = pagerank(star)
    assert scores[0] == max(scores)
    assert abs(sum(scores) - 1.0) < 1e-6


def test_same_transcript_same_analysis(transcripts: dict[str, str]) -> None:
    text = transcripts["incident_review"]
    assert analyze_text(text, MEETING_DAY) == analyze_text(text, MEETING_DAY)


def test_find_actions_keeps_transcript_order(transcripts: dict[str, str]) -> None:
    actions = find_actions(split_sentences(transcripts["customer_call"]))
    indexes = [a.sentence_index for a in actions]
    assert indexes == sorted(indexes)
