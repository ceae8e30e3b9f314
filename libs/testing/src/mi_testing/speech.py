"""Spoken test audio from festival's `text2wave`, which every speech engine here hears well."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

MEETING = (
    "Alice will send the budget report by Friday. Bob will review the design document next week."
)


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
