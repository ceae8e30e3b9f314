"""What the model is told. Kept apart from the plumbing so it is easy to tune."""

from __future__ import annotations

from llm_service.schemas import Passage

ANALYZE_SYSTEM = """\
You analyze meeting transcripts. Reply with JSON only, matching the given schema.
- summary: 3 to 6 sentences on what was discussed and decided. No preamble.
- action_items: every task someone committed to or was asked to do. text is the task as an
  instruction starting with its verb (not "I will ..."), in the transcript's own words.
  owner is the person's name as said in the transcript; use the speaker's name for
  "I will ..."; null when nobody is named. due is the deadline exactly as said
  ("Friday", "next Monday", "end of week"), null when none was said. Never invent either.
- topics: 3 to 6 short noun phrases naming what the meeting was about.
Use only information from the transcript.{language}"""

REDUCE_SYSTEM = """\
You merge partial summaries of one meeting, given in order, into one summary of 3 to 6
sentences covering the whole meeting. Reply with JSON only, matching the given schema.
Use only information from the partial summaries.{language}"""


ANSWER_SYSTEM = """\
You answer a question about past meetings using only the numbered passages given, which are
excerpts of meeting transcripts. Reply with JSON only, matching the given schema.
- answer: one to three sentences answering the question from the passages. No preamble.
- citations: the numbers of the passages the answer relies on (at least one).
- supported: true only if the passages contain the answer. If they do not, set supported to
  false, answer to "" and citations to []. Never use knowledge from outside the passages."""


def language_clause(language: str | None) -> str:
    if language:
        return f"\nWrite the summary, task texts and topics in the language '{language}'."
    return "\nWrite in the language of the transcript."


def analyze_messages(
    chunk: str, part: int, parts: int, language: str | None
) -> list[dict[str, str]]:
    where = f"This is part {part} of {parts} of the transcript.\n\n" if parts > 1 else ""
    return [
        {"role": "system", "content": ANALYZE_SYSTEM.format(language=language_clause(language))},
        {"role": "user", "content": f"{where}Transcript:\n{chunk}"},
    ]


def reduce_messages(summaries: list[str], language: str | None) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"Part {i}: {s}" for i, s in enumerate(summaries, start=1))
    return [
        {"role": "system", "content": REDUCE_SYSTEM.format(language=language_clause(language))},
        {"role": "user", "content": numbered},
    ]


def answer_messages(question: str, passages: list[Passage]) -> list[dict[str, str]]:
    listed = "\n\n".join(
        f"[{i}] {p.title} at {p.at}: {p.text}" for i, p in enumerate(passages, start=1)
    )
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": f"Passages:\n{listed}\n\nQuestion: {question}"},
    ]
