"""Splitting a transcript into speaker turns, sentences and comparable word tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llm_service.engines.extractive.stopwords import STOPWORDS, word_set

# "Alice:", "Dr. Smith:", "Speaker 2:", "SPEAKER_01:", optionally after a "[00:01:02]" stamp.
_SPEAKER_LABEL = re.compile(
    r"^[ \t]*(?:\[?\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\]?[ \t]+)?"
    r"(?P<label>[A-Z][\w.'\u2019-]*(?:[ ][A-Z][\w.'\u2019-]*){0,2}|Speaker[ ]?\d+|SPEAKER_\d+)"
    r"[ \t]*:[ \t]+",
    re.MULTILINE,
)
# Line prefixes that look like a speaker label but introduce content.
_NOT_SPEAKERS = frozenset(
    {
        "action item",
        "action items",
        "action",
        "ai",
        "todo",
        "to do",
        "note",
        "notes",
        "decision",
        "decisions",
        "next step",
        "next steps",
        "agenda",
        "summary",
        "update",
        "updates",
        "question",
        "answer",
        "follow up",
        "follow-up",
        "re",
        "subject",
        "date",
        "time",
        "attendees",
        "owner",
        "due",
        "topic",
        "reminder",
        "fyi",
        "ps",
    }
)

# A sentence ends at . ! ? (and closing quotes) before whitespace and a non-lowercase start.
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[^a-z\s])")
_ABBREVIATIONS = word_set(
    "mr mrs ms dr prof st vs etc e.g i.e approx inc ltd jr sr no dept est fig cf al"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]|\d+(?:st|nd|rd|th)?")
_WHITESPACE = re.compile(r"\s+")

# ASR output without punctuation arrives as one endless "sentence"; past this many words it is
# cut into pseudo-sentences so ranking still has units to choose from.
MAX_SENTENCE_WORDS = 60
PSEUDO_SENTENCE_WORDS = 25


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    speaker: str | None


def normalize_space(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _turns(text: str) -> list[tuple[str | None, str]]:
    """(speaker, text) per speaker turn; text before the first label has no speaker."""
    turns: list[tuple[str | None, str]] = []
    speaker: str | None = None
    start = 0
    for match in _SPEAKER_LABEL.finditer(text):
        label = match.group("label")
        if label.lower().rstrip(".") in _NOT_SPEAKERS:
            continue
        turns.append((speaker, text[start : match.start()]))
        speaker, start = label, match.end()
    turns.append((speaker, text[start:]))
    return [(who, body) for who, body in turns if body.strip()]


def _ends_with_abbreviation(fragment: str) -> bool:
    last = fragment.rstrip(".!?\"'\u201d\u2019)]").rsplit(maxsplit=1)[-1:] or [""]
    word = last[0].lower().rstrip(".")
    # A lone capital ("J. Smith") is an initial, not the end of a sentence.
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and last[0][0].isupper())


def _split_sentences(body: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(body):
        candidate = body[start : match.end()]
        if match.group().startswith(".") and _ends_with_abbreviation(candidate):
            continue
        pieces.append(candidate)
        start = match.end()
    pieces.append(body[start:])
    # Blank lines separate thoughts even without punctuation.
    out: list[str] = []
    for piece in pieces:
        out.extend(part for part in re.split(r"\n\s*\n", piece) if part.strip())
    return out


def _cut_long(sentence: str) -> list[str]:
    words = sentence.split()
    if len(words) <= MAX_SENTENCE_WORDS:
        return [sentence]
    return [
        " ".join(words[i : i + PSEUDO_SENTENCE_WORDS])
        for i in range(0, len(words), PSEUDO_SENTENCE_WORDS)
    ]


def split_sentences(text: str) -> list[Sentence]:
    """Sentences in transcript order with their speaker; whitespace inside is collapsed."""
    sentences: list[Sentence] = []
    for speaker, body in _turns(text):
        for raw in _split_sentences(body):
            for piece in _cut_long(normalize_space(raw)):
                if _WORD.search(piece):
                    sentences.append(Sentence(len(sentences), piece, speaker))
    return sentences


def words(text: str) -> list[str]:
    """Word tokens as written (case kept), apostrophes normalized."""
    return [w.replace("\u2019", "'") for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """A deliberately small stemmer: enough to match 'budgets' with 'budget'."""
    w = word.lower().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning, for comparing sentences."""
    return [
        stem(w)
        for w in words(text)
        if w.lower() not in STOPWORDS and len(w) > 1 and not w.isdigit()
    ]
