"""Clean-ups of Whisper output that the model's own checks miss.

Whisper can fall into a loop on long audio and emit the same sentence for window after window
(worst with conditioning on previous text, but it happens without). The repeats are dropped:
a segment whose text is (nearly) the one before it is not speech heard twice but the model
stuck. A real "Yes. Yes." from two speakers in a row is lost with them, which costs far less.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from whisper_service.engines.base import Segment

# Two texts at least this similar (difflib ratio over lower-cased words) count as a repeat:
# "Thank you." / "Thank you!" and a one-word difference in a long sentence do, a different
# sentence does not.
REPEAT_SIMILARITY = 0.9


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def is_repeat(previous: str, text: str) -> bool:
    a, b = _words(previous), _words(text)
    if not a or not b:
        return False
    return a == b or SequenceMatcher(None, a, b, autojunk=False).ratio() >= REPEAT_SIMILARITY


def drop_repeated_segments(segments: list[Segment]) -> list[Segment]:
    """`segments` without those repeating the segment kept before them."""
    kept: list[Segment] = []
    for segment in segments:
        if kept and is_repeat(kept[-1].text, segment.text):
            continue
        kept.append(segment)
    return kept
