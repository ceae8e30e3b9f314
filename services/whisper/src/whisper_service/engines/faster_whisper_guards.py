"""Clean-ups of Whisper output that the model's own checks miss.

Whisper can fall into a loop and emit the same sentence for window after window, with little
confidence in the words it repeats. A segment whose text is (nearly) the one before it is
dropped when the model was unsure of it: then it is the model stuck, not speech heard twice.
A sentence really said again (a recap, a speaker repeating a colleague) is heard with the same
confidence as the first time, and kept.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from whisper_service.engines.base import Segment

# Two texts at least this similar (difflib ratio over lower-cased words) count as a repeat:
# "Thank you." / "Thank you!" and a one-word difference in a long sentence do, a different
# sentence does not.
REPEAT_SIMILARITY = 0.9
# A repeat whose words the model heard with less confidence than this (mean probability) is a
# loop; festival's clearly spoken repetitions score above 0.8, loops over noise below 0.5.
REPEAT_MIN_CONFIDENCE = 0.6


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def is_repeat(previous: str, text: str) -> bool:
    a, b = _words(previous), _words(text)
    if not a or not b:
        return False
    return a == b or SequenceMatcher(None, a, b, autojunk=False).ratio() >= REPEAT_SIMILARITY


def confidence(segment: Segment) -> float | None:
    """The mean probability of the segment's words (None without word timings)."""
    if not segment.words:
        return None
    return sum(w.probability for w in segment.words) / len(segment.words)


def drop_repeated_segments(segments: list[Segment]) -> list[Segment]:
    """`segments` without the unsure repeats of the segment kept before them."""
    kept: list[Segment] = []
    for segment in segments:
        sure = confidence(segment)
        if (
            kept
            and is_repeat(kept[-1].text, segment.text)
            and (sure is None or sure < REPEAT_MIN_CONFIDENCE)
        ):
            continue
        kept.append(segment)
    return kept
