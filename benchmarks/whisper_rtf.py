"""Speed, accuracy and memory of the whisper engines, side by side on the same clips.

    uv run python benchmarks/whisper_rtf.py                      # all clips; 5 runs (meeting 3)
    uv run python benchmarks/whisper_rtf.py --clips festival,noisy --runs 9
    uv run python benchmarks/whisper_rtf.py --whisper-option beam_size=1   # try a setting
    uv run python benchmarks/whisper_rtf.py --sphinx-option maxhmmpf=3000  # try a pocketsphinx one
    uv run python benchmarks/whisper_rtf.py --vocabulary         # hotwords vs initial_prompt
    uv run python benchmarks/whisper_rtf.py --json benchmarks/results/whisper_rtf.json

Clips (16 kHz mono WAV, made here; festival's `text2wave`, `espeak-ng` and `sox` needed):
  festival  ~60 s of festival sentences joined end to end;
  espeak    the same sentences read by espeak-ng (a harsher synthetic voice);
  noisy     the festival clip with pink noise (sox) mixed in at 10 dB SNR;
  meeting   ~10 minutes: the sentences in shuffled order with 0.5-3 s pauses between them.
Each engine (pocketsphinx always; faster-whisper when a model directory is there,
WHISPER_MODEL_DIR / --model-dir) is measured two ways:
  engine  decode (PyAV) + recognise in-process: the engine's own speed;
  grpc    a real `python -m whisper_service` on loopback, the client streaming the WAV file:
          what the worker sees (wall time, including upload and the response).
Reported per clip: the median of the timed runs (after one warm-up run per engine and mode),
RTF = seconds / audio seconds (lower is faster), the gRPC overhead (grpc / engine), WER after
Whisper-style text normalisation of both sides (mi_testing.speech.normalise), and the peak
memory of the transcription over the memory before it (VmHWM reset through
/proc/<pid>/clear_refs; Linux).
Engines run with their default settings (WhisperSettings) unless an option overrides one.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _timing import machine as machine_line

from mi_testing.speech import word_error_rate
from whisper_service import engines
from whisper_service.audio import decode
from whisper_service.client import WhisperClient
from whisper_service.config import WhisperSettings
from whisper_service.engines import Engine, faster_whisper_engine
from whisper_service.engines.pocketsphinx_engine import PocketsphinxEngine

ROOT = Path(__file__).resolve().parents[1]
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
# Names Whisper misspells unless told (--vocabulary), each said once at the end of a clip.
NAMES = ["Siobhan", "Przybylski", "Kowalczyk", "Tchaikovsky", "Okonkwo", "Aoife"]
ALL_CLIPS = ("festival", "espeak", "noisy", "meeting")
NOISE_SNR_DB = 10.0


# --- clips --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    said: str
    origin: str

    @property
    def seconds(self) -> float:
        with wave.open(str(self.path)) as w:
            return w.getnframes() / w.getframerate()


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype(np.int16).tobytes())
    return path


def _to_16k(raw: Path, out: Path) -> Path:
    subprocess.run(
        ["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True
    )
    return out


class Voices:
    """Sentences spoken once per voice and cached: festival (text2wave) or espeak-ng."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        missing = [t for t in ("text2wave", "espeak-ng", "sox") if not shutil.which(t)]
        if missing:
            sys.exit(
                f"whisper_rtf: needs {', '.join(missing)}: apt-get install festival espeak-ng sox"
            )
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def speak(self, text: str, voice: str = "festival") -> np.ndarray:
        key = (voice, text)
        if key not in self._cache:
            raw = self.out_dir / f"raw-{len(self._cache)}.wav"
            if voice == "festival":
                subprocess.run(["text2wave", "-o", str(raw)], input=text.encode(), check=True)
            else:
                subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
            self._cache[key] = read_pcm(_to_16k(raw, self.out_dir / f"s16-{len(self._cache)}.wav"))
        return self._cache[key]


def sentences_clip(voices: Voices, name: str, seconds: float, voice: str) -> Clip:
    parts: list[np.ndarray] = []
    said: list[str] = []
    while sum(len(p) for p in parts) < seconds * 16000:
        text = SENTENCES[len(parts) % len(SENTENCES)]
        parts.append(voices.speak(text, voice))
        said.append(text)
    path = write_wav(voices.out_dir / f"{name}.wav", np.concatenate(parts))
    return Clip(name, path, " ".join(said), f"{voice}, {len(parts)} sentences end to end")


def meeting_clip(voices: Voices, minutes: float, seed: int = 1, name: str = "meeting") -> Clip:
    """Sentences in shuffled rounds with 0.5-3 s pauses: speech as a meeting has it."""
    rng = random.Random(seed)
    parts, said, total = [], [], 0
    while total < minutes * 60 * 16000:
        order = SENTENCES[:]
        rng.shuffle(order)
        for text in order:
            speech = voices.speak(text)
            pause = np.zeros(int(rng.uniform(0.5, 3.0) * 16000), dtype=np.int16)
            parts += [speech, pause]
            said.append(text)
            total += len(speech) + len(pause)
    path = write_wav(voices.out_dir / f"{name}.wav", np.concatenate(parts))
    return Clip(name, path, " ".join(said), f"festival, {len(said)} sentences with 0.5-3 s pauses")


def noisy_clip(clean: Clip, out_dir: Path) -> Clip:
    """`clean` with sox's pink noise mixed in at NOISE_SNR_DB."""
    noise_path = out_dir / "pink.wav"
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise_path), "synth",
         f"{clean.seconds:.3f}", "pinknoise", "vol", "0.5"],
        check=True,
    )  # fmt: skip
    speech = read_pcm(clean.path).astype(np.float64)
    noise = read_pcm(noise_path).astype(np.float64)[: len(speech)]
    noise = np.pad(noise, (0, len(speech) - len(noise)))
    rms = lambda x: np.sqrt(np.mean(x**2))  # noqa: E731
    noise *= rms(speech) / rms(noise) / 10 ** (NOISE_SNR_DB / 20)
    mixed = np.clip(speech + noise, -32768, 32767)
    path = write_wav(out_dir / "noisy.wav", mixed)
    return Clip(
        "noisy", path, clean.said, f"{clean.origin} + sox pink noise at {NOISE_SNR_DB:g} dB SNR"
    )


def make_clips(names: list[str], out_dir: Path, meeting_minutes: float) -> list[Clip]:
    voices = Voices(out_dir)
    clips: dict[str, Clip] = {}
    festival = sentences_clip(voices, "festival", 60, "festival")
    for name in names:
        if name == "festival":
            clips[name] = festival
        elif name == "espeak":
            clips[name] = sentences_clip(voices, "espeak", 45, "espeak")
        elif name == "noisy":
            clips[name] = noisy_clip(festival, out_dir)
        elif name == "meeting":
            clips[name] = meeting_clip(voices, meeting_minutes)
    return [clips[n] for n in names]


# --- measuring ----------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current, peak since the last reset) resident memory of a process, in MB (10^6 B)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) * 1024 / 1e6  # the kernel counts in KiB
    return values["VmRSS"], values["VmHWM"]


def reset_peak(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    server_side: list[float] = field(default_factory=list)
    text: str = ""
    audio_seconds: float = 0.0

    def add(self, run: Callable[[], tuple[str, float, float]], pid: int | str) -> None:
        """Time one call of `run` (-> text, audio seconds, server-side seconds): wall time, the
        CPU time of the process doing the work (steadier than wall time on a shared machine),
        and how far its resident memory rose above where it was."""
        before, _ = rss_mb(pid)
        reset_peak(pid)
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        self.text, self.audio_seconds, server_side = run()
        self.times.append(time.perf_counter() - started)
        self.cpu.append(cpu_seconds(pid) - cpu_before)
        self.peaks.append(rss_mb(pid)[1] - before)
        self.server_side.append(server_side)


def row(engine: str, mode: str, clip: Clip, m: Measurement) -> dict[str, Any]:
    median = statistics.median(m.times)
    return {
        "clip": clip.name,
        "engine": engine,
        "mode": mode,
        "audio_seconds": round(m.audio_seconds, 2),
        "median_seconds": round(median, 3),
        "rtf": round(median / m.audio_seconds, 4),
        "server_rtf": round(statistics.median(m.server_side) / m.audio_seconds, 4),
        "cpu_seconds": round(statistics.median(m.cpu), 3),
        "wer": round(word_error_rate(clip.said, m.text), 4),
        "peak_mb": round(max(m.peaks), 1),
        "runs": [round(t, 3) for t in m.times],
    }


@contextlib.contextmanager
def server(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real `python -m whisper_service` on loopback; yields (process, port) once listening."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "server.log")
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "whisper_service"],
                env={**os.environ, "WHISPER_PORT": "0", "WHISPER_METRICS_PORT": "0",
                     "LOG_JSON": "true", "LOG_LEVEL": "INFO", **env},
                stderr=log_file,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            yield process, _wait_for_port(log, process)
        finally:
            process.terminate()
            process.wait(30)


def bench(
    name: str,
    engine: Engine | None,
    server_env: dict[str, str] | None,
    clips: list[Clip],
    runs: dict[str, int],
) -> list[dict[str, Any]]:
    """One engine in-process and/or through gRPC, their runs interleaved so that both see
    the same machine (other load comes and goes)."""
    with contextlib.ExitStack() as stack:
        client, pid = None, 0
        if server_env is not None:
            process, port = stack.enter_context(server(server_env))
            client = stack.enter_context(WhisperClient(f"127.0.0.1:{port}", timeout=3600))
            pid = process.pid

        def in_process(clip: Clip) -> tuple[str, float, float]:
            assert engine is not None
            started = time.perf_counter()
            audio = decode(clip.path.read_bytes(), max_seconds=4 * 3600)
            result = engine.transcribe(audio, language=None, should_stop=lambda: False)
            return result.text, audio.seconds, time.perf_counter() - started

        def over_grpc(clip: Clip) -> tuple[str, float, float]:
            assert client is not None
            transcript = client.transcribe_file(clip.path)
            return transcript.text, transcript.audio_seconds, transcript.processing_seconds

        # Warm-up (and, for the server, waiting out its engine loading): first-touch page
        # faults and caches are not what a long-running server sees.
        if engine is not None:
            in_process(clips[0])
        if client is not None:
            over_grpc(clips[0])
        rows = []
        for clip in clips:
            local, remote = Measurement(), Measurement()
            for _ in range(runs[clip.name]):
                if engine is not None:
                    local.add(functools.partial(in_process, clip), "self")
                if client is not None:
                    remote.add(functools.partial(over_grpc, clip), pid)
            if engine is not None:
                rows.append(row(name, "engine", clip, local))
            if client is not None:
                rows.append(row(name, "grpc", clip, remote))
        return rows


def _wait_for_port(log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if "grpc_port" in entry:
                    return int(entry["grpc_port"])
        if process.poll() is not None:
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


# --- the vocabulary hint: hotwords or initial_prompt ----------------------------------------


def bench_vocabulary(model_dir: Path, out_dir: Path) -> list[dict[str, Any]]:
    """Names said after 60 s of other speech: which way of passing them gets them spelled?"""
    from faster_whisper import WhisperModel

    voices = Voices(out_dir)
    festival = sentences_clip(voices, "festival", 60, "festival")
    names = [voices.speak(f"Please send the contract to {n} before Friday.") for n in NAMES]
    audio = np.concatenate([read_pcm(festival.path), *names]).astype(np.float32) / 32768
    said = (
        festival.said
        + " "
        + " ".join(f"Please send the contract to {n} before Friday." for n in NAMES)
    )
    defaults = WhisperSettings()
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", local_files_only=True)
    hint = ", ".join(NAMES)
    rows = []
    for how, kwargs in [
        ("none", {}),
        ("initial_prompt", {"initial_prompt": hint}),
        ("hotwords", {"hotwords": hint}),
        ("both", {"initial_prompt": hint, "hotwords": hint}),
    ]:
        segments, _ = model.transcribe(
            audio,
            language="en",
            beam_size=defaults.beam_size,
            vad_filter=True,
            word_timestamps=True,
            condition_on_previous_text=defaults.condition_on_previous_text,
            **kwargs,
        )
        text = " ".join(s.text.strip() for s in segments)
        spelled = [n for n in NAMES if n in text]
        rows.append(
            {
                "hint": how,
                "names_spelled_right": f"{len(spelled)}/{len(NAMES)}",
                "which": spelled,
                "wer": round(word_error_rate(said, text), 4),
            }
        )
    return rows


# --- main ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "machine": machine_line(),
        "usable_cores": usable,
        "load_avg_1m": os.getloadavg()[0],
        "platform": platform.platform(),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"\n{'clip':<10}{'audio s':>8}  {'engine':<15}{'mode':<7}{'median s':>9}{'RTF':>8}"
        f"{'cpu s':>7}{'WER':>7}{'peak MB':>9}{'grpc/engine':>12}  runs"
    )
    engine_times = {
        (r["clip"], r["engine"]): r["median_seconds"] for r in results if r["mode"] == "engine"
    }
    for r in sorted(results, key=lambda r: (ALL_CLIPS.index(r["clip"]), r["engine"], r["mode"])):
        overhead = ""
        if r["mode"] == "grpc" and (r["clip"], r["engine"]) in engine_times:
            overhead = f"{r['median_seconds'] / engine_times[(r['clip'], r['engine'])]:.2f}x"
        print(
            f"{r['clip']:<10}{r['audio_seconds']:>8.1f}  {r['engine']:<15}{r['mode']:<7}"
            f"{r['median_seconds']:>9.2f}{r['rtf']:>8.3f}{r['cpu_seconds']:>7.1f}{r['wer']:>7.3f}"
            f"{r['peak_mb']:>9.0f}"
            f"{overhead:>12}  {r['runs']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per short clip")
    parser.add_argument("--meeting-runs", type=int, default=3, help="timed runs of the meeting")
    parser.add_argument("--meeting-minutes", type=float, default=10, help="length of the meeting")
    parser.add_argument("--clips", default=",".join(ALL_CLIPS), help="comma-separated subset")
    parser.add_argument("--engines", default="pocketsphinx,faster-whisper")
    parser.add_argument("--modes", default="engine,grpc")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("WHISPER_MODEL_DIR", ROOT / ".models/dev/whisper")),
        help="faster-whisper model directory",
    )
    parser.add_argument(
        "--whisper-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a WhisperSettings field for faster-whisper, e.g. beam_size=1 (both modes)",
    )
    parser.add_argument(
        "--sphinx-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra pocketsphinx decoder option (engine mode only), e.g. maxhmmpf=3000",
    )
    parser.add_argument("--vocabulary", action="store_true", help="only the vocabulary-hint test")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    info = machine()
    print(f"machine: {info['machine']}; load average {info['load_avg_1m']:.2f}")
    report: dict[str, Any] = {"machine": info}
    with tempfile.TemporaryDirectory() as tmp:
        if args.vocabulary:
            rows = bench_vocabulary(args.model_dir, Path(tmp))
            for r in rows:
                print(
                    f"{r['hint']:<16} names {r['names_spelled_right']}  WER {r['wer']:.3f}  "
                    f"{r['which']}"
                )
            report["vocabulary"] = rows
        else:
            names = [c for c in args.clips.split(",") if c]
            clips = make_clips(names, Path(tmp), args.meeting_minutes)
            for clip in clips:
                print(f"clip {clip.name}: {clip.seconds:.1f} s, {clip.origin}")
            runs = {c.name: args.meeting_runs if c.name == "meeting" else args.runs for c in clips}
            report["clips"] = {
                c.name: {"seconds": round(c.seconds, 2), "origin": c.origin} for c in clips
            }
            report["results"] = run_engines(args, clips, runs)
            print_table(report["results"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run_engines(
    args: argparse.Namespace, clips: list[Clip], runs: dict[str, int]
) -> list[dict[str, Any]]:
    chosen, modes = args.engines.split(","), args.modes.split(",")
    results: list[dict[str, Any]] = []
    common = {"WHISPER_WORKERS": "1"}
    if "pocketsphinx" in chosen:
        options = dict(parse_option(o) for o in args.sphinx_option)
        sphinx = (
            PocketsphinxEngine(workers=1, decoder_config=options) if "engine" in modes else None
        )
        env = {**common, "WHISPER_ENGINE": "pocketsphinx"} if "grpc" in modes else None
        results += bench("pocketsphinx", sphinx, env, clips, runs)
        if sphinx is not None:
            sphinx.close()
    if "faster-whisper" in chosen:
        if not faster_whisper_engine.has_model(args.model_dir):
            print(
                f"faster-whisper skipped: no model in {args.model_dir} "
                "(uv run inv models.pull --env dev)"
            )
            return results
        options = dict(parse_option(o) for o in args.whisper_option)
        settings = WhisperSettings(
            engine="faster-whisper",
            model_dir=args.model_dir,
            workers=1,
            **options,  # type: ignore[arg-type]
        )
        whisper = engines.load(settings) if "engine" in modes else None
        env = None
        if "grpc" in modes:
            env = {
                **common,
                "WHISPER_ENGINE": "faster-whisper",
                "WHISPER_MODEL_DIR": str(args.model_dir),
            }
            for key, value in options.items():
                alias = WhisperSettings.model_fields[key].validation_alias
                env[str(alias)] = str(value).lower() if isinstance(value, bool) else str(value)
        results += bench("faster-whisper", whisper, env, clips, runs)
        if whisper is not None:
            whisper.close()
    return results


if __name__ == "__main__":
    sys.exit(main())
