"""Real-time factor of the whisper engines: processing seconds / audio seconds (lower is faster).

    uv run python benchmarks/whisper_rtf.py                    # ~60 s clip, median of 5 runs
    uv run python benchmarks/whisper_rtf.py --runs 9 --json benchmarks/results/whisper_rtf.json
    uv run python benchmarks/whisper_rtf.py --sphinx-option maxhmmpf=3000   # try a tuning

The clip is festival speech (`text2wave`) joined with `sox`, about 60 s; without festival the
committed test fixtures are repeated instead (and the output says so). Each available engine
is measured twice:
  engine  decode (PyAV) + recognise in-process: the engine's own speed;
  grpc    a real `python -m whisper_service` on loopback, the client streaming the WAV file:
          what the worker sees (wall time, including upload and the response).
faster-whisper runs only when a model directory is there (WHISPER_MODEL_DIR / --model-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import machine as machine_line

from whisper_service.audio import decode
from whisper_service.client import WhisperClient
from whisper_service.config import WhisperSettings
from whisper_service.engines import faster_whisper_engine
from whisper_service.engines.base import Engine
from whisper_service.engines.pocketsphinx_engine import PocketsphinxEngine

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "services/whisper/tests/fixtures"
SENTENCES = [
    "Good morning everyone, let's start the weekly planning meeting.",
    "Alice will send the budget report on Friday.",
    "The team agreed to hire two new engineers next quarter.",
    "Bob will book a meeting room for the design review on Monday.",
    "We need to reduce the cloud costs by ten percent this year.",
    "Carol will call the customer about the delayed order tomorrow.",
    "The marketing plan is approved and the launch is in June.",
    "Dave will update the project schedule and share it with everyone.",
    "Please review the design document before the next meeting.",
    "The support team closed more tickets than last month.",
    "We will move the release to the second week of July.",
    "Thanks everyone, that's all for today.",
]
# What tests/fixtures/alice.wav and team.wav say (see make_fixtures.sh).
FIXTURE_SENTENCES = [
    "Alice will send the budget report on Friday.",
    "The team agreed to hire two new engineers next quarter.",
]


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_avg_1m": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance / reference length, after lower-casing and dropping punctuation."""

    def words(text: str) -> list[str]:
        return "".join(c if c.isalnum() or c in " '" else " " for c in text.lower()).split()

    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(len(ref), 1)


def make_clip(target_seconds: float, out_dir: Path) -> tuple[Path, str, str]:
    """~target_seconds of speech as 16 kHz mono WAV: (path, how it was made, what is said)."""
    clip = out_dir / "speech.wav"
    if shutil.which("text2wave") and shutil.which("sox"):
        parts: list[Path] = []
        total = 0.0
        while total < target_seconds:
            sentence = SENTENCES[len(parts) % len(SENTENCES)]
            raw, part = out_dir / f"raw{len(parts)}.wav", out_dir / f"part{len(parts)}.wav"
            subprocess.run(["text2wave", "-o", str(raw)], input=sentence.encode(), check=True)
            subprocess.run(
                ["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(part)], check=True
            )
            with wave.open(str(part)) as w:
                total += w.getnframes() / w.getframerate()
            parts.append(part)
        subprocess.run(["sox", "-D", *map(str, parts), str(clip)], check=True)
        said = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(len(parts)))
        return clip, f"festival text2wave, {len(parts)} sentences joined with sox", said
    pcm = []
    for name in ("alice.wav", "team.wav"):
        with wave.open(str(FIXTURES / name)) as w:
            pcm.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
    repeats = int(target_seconds // (sum(len(p) for p in pcm) / 16000)) + 1
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate(pcm * repeats).tobytes())
    said = " ".join(FIXTURE_SENTENCES * repeats)
    return clip, "no festival/sox here: the committed test fixtures, repeated", said


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    times = [measure() for _ in range(runs)]
    return statistics.median(times), times


def bench_engine(engine: Engine, clip: Path, said: str, runs: int) -> dict[str, Any]:
    data = clip.read_bytes()
    seconds = decode(data, max_seconds=3600).seconds
    text = ""

    def measure() -> float:
        nonlocal text
        started = time.perf_counter()
        audio = decode(data, max_seconds=3600)
        text = engine.transcribe(audio, language=None, should_stop=lambda: False).text
        return time.perf_counter() - started

    measure()  # warm-up: first-touch page faults and caches are not what a server sees
    median, times = median_of(runs, measure)
    return {
        "mode": "engine",
        "audio_seconds": round(seconds, 2),
        "median_seconds": round(median, 3),
        "rtf": round(median / seconds, 3),
        "runs": [round(t, 3) for t in times],
        "wer": round(word_error_rate(said, text), 3),
    }


def bench_grpc(env: dict[str, str], clip: Path, said: str, runs: int) -> dict[str, Any]:
    """A real server subprocess; the client's wall time per file."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "server.log")
        with log.open("w") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "whisper_service"],
                env={**os.environ, **env, "LOG_JSON": "true"},
                stderr=log_file,
                stdout=subprocess.DEVNULL,
            )
        try:
            port = _wait_for_port(log, server)
            with WhisperClient(f"127.0.0.1:{port}", timeout=600) as client:
                client.transcribe_file(clip)  # warm-up, and waits out engine loading

                server_side: list[float] = []
                audio_seconds: list[float] = []
                texts: list[str] = []

                def measure() -> float:
                    started = time.perf_counter()
                    transcript = client.transcribe_file(clip)
                    server_side.append(transcript.processing_seconds)
                    audio_seconds.append(transcript.audio_seconds)
                    texts.append(transcript.text)
                    return time.perf_counter() - started

                median, times = median_of(runs, measure)
        finally:
            server.terminate()
            server.wait(30)
    seconds = audio_seconds[-1]
    return {
        "mode": "grpc",
        "audio_seconds": round(seconds, 2),
        "median_seconds": round(median, 3),
        "rtf": round(median / seconds, 3),
        "server_rtf": round(statistics.median(server_side) / seconds, 3),
        "runs": [round(t, 3) for t in times],
        "wer": round(word_error_rate(said, texts[-1]), 3),
    }


def _wait_for_port(log: Path, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "grpc_port" in entry:
                return int(entry["grpc_port"])
        if server.poll() is not None:
            raise RuntimeError(f"whisper server exited: {log.read_text()}")
        time.sleep(0.1)
    raise RuntimeError("whisper server did not start")


def parse_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            continue
    return key, {"true": True, "false": False}.get(value.lower(), value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (>=5)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the speech clip")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("WHISPER_MODEL_DIR", ROOT / ".models/dev/whisper")),
        help="faster-whisper model directory",
    )
    parser.add_argument(
        "--sphinx-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra pocketsphinx decoder option (engine mode only), e.g. maxhmmpf=3000",
    )
    parser.add_argument("--no-grpc", action="store_true", help="skip the end-to-end runs")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    info = machine()
    print(f"machine: {machine_line()}; load average {info['load_avg_1m']}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip, origin, said = make_clip(args.seconds, Path(tmp))
        print(f"clip: {origin}")

        options = dict(parse_option(o) for o in args.sphinx_option)
        engine = PocketsphinxEngine(workers=1, decoder_config=options)
        results.append(
            {
                "engine": "pocketsphinx",
                "options": options,
                **bench_engine(engine, clip, said, args.runs),
            }
        )
        engine.close()
        if not args.no_grpc:
            env = {
                "WHISPER_ENGINE": "pocketsphinx",
                "WHISPER_PORT": "0",
                "WHISPER_METRICS_PORT": "0",
                "WHISPER_WORKERS": "1",
            }
            results.append({"engine": "pocketsphinx", **bench_grpc(env, clip, said, args.runs)})

        if faster_whisper_engine.has_model(args.model_dir):
            fw = faster_whisper_engine.load(
                WhisperSettings(engine="faster-whisper", model_dir=args.model_dir, workers=1)
            )
            results.append(
                {
                    "engine": "faster-whisper",
                    "model": str(args.model_dir),
                    **bench_engine(fw, clip, said, args.runs),
                }
            )
            fw.close()
        else:
            results.append(
                {"engine": "faster-whisper", "skipped": f"skipped: no model dir ({args.model_dir})"}
            )

    print(f"\n{'engine':<16}{'mode':<8}{'audio s':>9}{'median s':>10}{'RTF':>7}{'WER':>7}  runs")
    for r in results:
        if "skipped" in r:
            print(f"{r['engine']:<16}{'-':<8}{r['skipped']}")
            continue
        print(
            f"{r['engine']:<16}{r['mode']:<8}{r['audio_seconds']:>9.1f}"
            f"{r['median_seconds']:>10.2f}{r['rtf']:>7.3f}{r.get('wer', float('nan')):>7.3f}"
            f"  {r['runs']}"
        )
    report = {"machine": info, "clip": origin, "runs": args.runs, "results": results}
    print("\n" + json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
