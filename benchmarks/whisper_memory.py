"""Peak memory of the whisper service transcribing a long recording (default: one hour).

    uv run python benchmarks/whisper_memory.py                       # 60 min, faster-whisper
    uv run python benchmarks/whisper_memory.py --minutes 20 --window 300 --window 3600

The recording is whisper_rtf.py's meeting (festival sentences with 0.5-3 s pauses), as a
16 kHz mono WAV streamed by the client to a real `python -m whisper_service` on loopback.
Memory is the server's resident set: "loaded" after the model is loaded and a short clip has
been transcribed (the baseline), "peak" the highest it reached during the long transcription
(VmHWM, reset through /proc/<pid>/clear_refs just before; Linux). The bound the service keeps
is growth <= 2x the recording's size as 16 kHz float32 (an hour: 230 MB -> 460 MB).
Each --window is one run with that WHISPER_WINDOW_SECONDS: 3600 transcribes an hour in a single
window, as faster-whisper does when handed the whole recording (the unbounded baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _timing import machine
from whisper_rtf import (
    ROOT,
    Voices,
    meeting_clip,
    reset_peak,
    rss_mb,
    server,
)

from mi_testing.speech import word_error_rate
from whisper_service.client import WhisperClient
from whisper_service.engines import faster_whisper_engine

FLOAT32_BYTES_PER_SECOND = 16_000 * 4


def run(model_dir: Path, window: float, clip: Any, warm_up: Path) -> dict[str, Any]:
    env = {
        "WHISPER_ENGINE": "faster-whisper",
        "WHISPER_MODEL_DIR": str(model_dir),
        "WHISPER_WORKERS": "1",
        "WHISPER_WINDOW_SECONDS": f"{window:g}",
        "WHISPER_MAX_AUDIO_SECONDS": str(4 * 3600),
        "WHISPER_MAX_STREAM_MB": "4096",
    }
    with (
        server(env) as (process, port),
        WhisperClient(f"127.0.0.1:{port}", timeout=4 * 3600) as client,
    ):
        client.transcribe_file(warm_up)
        loaded, _ = rss_mb(process.pid)
        reset_peak(process.pid)
        # A timeline, to say when the peak happened (upload, decoding or transcribing).
        samples: list[tuple[float, float]] = []
        done = threading.Event()
        started = time.perf_counter()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append((time.perf_counter() - started, rss_mb(process.pid)[0]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        transcript = client.transcribe_file(clip.path)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        _, peak = rss_mb(process.pid)
    float32_mb = transcript.audio_seconds * FLOAT32_BYTES_PER_SECOND / 1e6
    growth = peak - loaded
    peak_at = max(samples, key=lambda s: s[1])[0] if samples else 0.0
    return {
        "window_seconds": window,
        "audio_seconds": round(transcript.audio_seconds, 1),
        "float32_mb": round(float32_mb, 1),
        "loaded_rss_mb": round(loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "growth_mb": round(growth, 1),
        "growth_vs_float32": round(growth / float32_mb, 2),
        "peak_at_seconds": round(peak_at, 1),
        "seconds": round(elapsed, 1),
        "rtf": round(elapsed / transcript.audio_seconds, 3),
        "server_rtf": round(transcript.processing_seconds / transcript.audio_seconds, 3),
        "wer": round(word_error_rate(clip.said, transcript.text), 4),
        "segments": len(transcript.segments),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60, help="length of the recording")
    parser.add_argument(
        "--window",
        type=float,
        action="append",
        help="WHISPER_WINDOW_SECONDS to run with (repeatable; default: the service's default)",
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".models/dev/whisper")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if not faster_whisper_engine.has_model(args.model_dir):
        sys.exit(f"no model in {args.model_dir}: uv run inv models.pull --env dev")
    from whisper_service.config import WhisperSettings

    windows = args.window or [WhisperSettings.model_fields["window_seconds"].default]
    print(f"machine: {machine()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        voices = Voices(Path(tmp))
        warm_up = meeting_clip(voices, 0.25, name="warm-up").path
        clip = meeting_clip(voices, args.minutes)
        print(f"recording: {clip.seconds / 60:.1f} min, {clip.origin}")
        for window in windows:
            result = run(args.model_dir, window, clip, warm_up)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(
        f"\n{'window s':>9}{'audio min':>10}{'f32 MB':>8}{'loaded MB':>10}{'peak MB':>9}"
        f"{'growth MB':>10}{'x f32':>7}{'RTF':>7}{'WER':>7}"
    )
    for r in results:
        print(
            f"{r['window_seconds']:>9g}{r['audio_seconds'] / 60:>10.1f}{r['float32_mb']:>8.0f}"
            f"{r['loaded_rss_mb']:>10.0f}{r['peak_rss_mb']:>9.0f}{r['growth_mb']:>10.0f}"
            f"{r['growth_vs_float32']:>7.2f}{r['rtf']:>7.3f}{r['wer']:>7.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
