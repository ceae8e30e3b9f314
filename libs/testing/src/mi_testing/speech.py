"""Spoken test audio from festival's `text2wave`, which every speech engine here hears well."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

MEETING = (
    "Alice will send the budget report by Friday. Bob will review the design document next week."
)
PLANNING_MEETING = (
    "Good morning everyone, let's start the weekly planning meeting. The team agreed to hire "
    "two new engineers next quarter. Alice will send the budget report by Friday. We need to "
    "reduce the cloud costs by ten percent this year. The marketing plan is approved and the "
    "launch is in June. Bob will review the design document next week. We will move the "
    "release to the second week of July. The support team closed more tickets than last "
    "month. Thanks everyone, that's all for today."
)
"""About 34 s of varied speech around MEETING's two action items. Varied on purpose: Whisper
takes a recording that repeats itself for a decoding loop (its compression-ratio check) and
falls back to sampling, so its text would change from run to run."""


def speak(text: str, target: Path) -> Path:
    """`text` spoken into the WAV `target`; skips the test when festival is not installed."""
    if shutil.which("text2wave") is None:
        pytest.skip("festival's text2wave is not installed (apt-get install festival)")
    script = target.with_suffix(".txt")
    script.write_text(text)
    subprocess.run(["text2wave", str(script), "-o", str(target)], check=True, timeout=120)
    return target


def repeat(source: Path, target: Path, times: int, pause_s: float = 0.5) -> Path:
    """`source` `times` over with a pause after each: a longer recording of the same words."""
    with wave.open(str(source), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes())
    silence = b"\x00" * int(params.sampwidth * params.nchannels * params.framerate * pause_s)
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes((frames + silence) * times)
    return target


# --- word error rate: how close a transcript is to what was said ---------------------------

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}


def normalise(text: str) -> list[str]:
    """Words after Whisper-style normalisation: lower case, no punctuation, numbers as digits
    ("ten percent" and "10%" both become "10 percent"), so only real misrecognitions count."""
    text = text.lower().replace("%", " percent ")
    text = re.sub(r"(\d),(\d)", r"\1\2", text)  # 1,000 -> 1000
    text = re.sub(r"[^\w\s']|(?<!\w)'|'(?!\w)", " ", text)
    words: list[str] = []
    for word in text.split():
        value = NUMBER_WORDS.get(word)
        previous = words[-1] if words else ""
        if value is not None and 0 < value < 10 and previous.isdigit() and previous.endswith("0"):
            words[-1] = str(int(previous) + value)  # "twenty five" -> 25
        elif value is not None:
            words.append(str(value))
        else:
            words.append(word)
    return words


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance / reference length, after normalise() on both sides."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(len(ref), 1)
