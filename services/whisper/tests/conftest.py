"""Fixtures: speech audio, and real whisper servers on loopback (subprocess or in-process).

The speech is festival's and espeak-ng's (committed WAVs, see fixtures/make_fixtures.sh);
other formats, videos, noise and longer clips are made from it here with PyAV and numpy, so the
tests need neither festival nor sox.

The faster-whisper tests run a real Whisper model, found by the mi_testing plugin's
`whisper_model_dir` fixture (skipped without one, except under CI, where they fail).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

FIXTURES = Path(__file__).parent / "fixtures"
# Words pocketsphinx gets right in festival's voice, every time.
ALICE_WORDS = ("alice", "send", "budget", "report", "friday")
TEAM_WORDS = ("team", "agreed", "hire", "engineers", "quarter")
# (container, codec, suffix, sample rate, bit rate) for each accepted input format, at the
# rates phones and browsers record at, so decoding also has to resample.
FORMATS = {
    "mp3": ("mp3", "libmp3lame", ".mp3", 44100, 96_000),
    "m4a": ("ipod", "aac", ".m4a", 44100, 96_000),
    "ogg-opus": ("ogg", "libopus", ".ogg", 48000, 48_000),
    "webm": ("webm", "libopus", ".webm", 48000, 48_000),
    "flac": ("flac", "flac", ".flac", 16000, 0),
}
SERVER_START_TIMEOUT = 60.0


# --- audio --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def alice_wav() -> Path:
    return FIXTURES / "alice.wav"


@pytest.fixture(scope="session")
def team_wav() -> Path:
    return FIXTURES / "team.wav"


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return path


def convert(
    source: Path, target: Path, container: str, codec: str, rate: int, bit_rate: int = 0
) -> Path:
    """Re-encode a WAV with PyAV (what a browser or phone would upload)."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        if bit_rate:
            stream.bit_rate = bit_rate
        for frame in inp.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


@pytest.fixture(scope="session")
def german_wav() -> Path:
    return FIXTURES / "german.wav"


@pytest.fixture(scope="session")
def contract_wav() -> Path:
    """Festival saying a name Whisper misspells unless told about it (Przybylski)."""
    return FIXTURES / "contract.wav"


def noise(kind: str, seconds: float, level: float = 0.05, seed: int = 7) -> np.ndarray:
    """int16 noise at RMS `level` (full scale 1): white, pink, brown, or room (pink + mains hum)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    signal = rng.standard_normal(n)
    if kind != "white":
        # Shape white noise's spectrum: 1/f power for pink, 1/f^2 for brown.
        spectrum = np.fft.rfft(signal)
        freqs = np.fft.rfftfreq(n, 1 / 16000)
        freqs[0] = freqs[1]
        spectrum /= freqs if kind == "brown" else np.sqrt(freqs)
        signal = np.fft.irfft(spectrum, n)
        if kind == "room":
            t = np.arange(n) / 16000
            hum = 0.5 * np.sin(2 * np.pi * 50 * t) + 0.2 * np.sin(2 * np.pi * 150 * t)
            signal = signal / np.sqrt(np.mean(signal**2)) + hum
    signal = signal / np.sqrt(np.mean(signal**2)) * level
    return (np.clip(signal, -1, 1) * 32767).astype(np.int16)


def make_video(path: Path, audio: Path | None, seconds: float = 3.0) -> Path:
    """An MP4 with a small H.264-or-MPEG-4 video stream and, if given, `audio` as AAC."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream(codec, rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = None
        if audio is not None:
            sound = out.add_stream("aac", rate=44100)
            sound.layout = "mono"
        for i in range(int(seconds * 10)):
            image = np.full((48, 64, 3), (i * 8) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None and sound is not None:
            with av.open(str(audio)) as inp:
                for audio_frame in inp.decode(audio=0):
                    audio_frame.pts = None
                    for packet in sound.encode(audio_frame):
                        out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


@pytest.fixture(scope="session")
def videos(alice_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An MP4 of alice.wav with a video stream, and the same video without sound."""
    out = tmp_path_factory.mktemp("video")
    return {
        "with-audio": make_video(out / "alice.mp4", alice_wav),
        "no-audio": make_video(out / "silent-film.mp4", None),
    }


# --- the real Whisper model ----------------------------------------------------------------


@pytest.fixture(scope="session")
def encoded_alice(alice_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("formats")
    files = {"wav": alice_wav}
    for name, (container, codec, suffix, rate, bit_rate) in FORMATS.items():
        files[name] = convert(alice_wav, out / f"alice{suffix}", container, codec, rate, bit_rate)
    return files


@pytest.fixture(scope="session")
def make_speech(
    alice_wav: Path, team_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[float], Path]:
    """A WAV of at least `seconds` of speech (the two sentences, repeated)."""
    out = tmp_path_factory.mktemp("speech")
    pieces = [read_pcm(alice_wav), read_pcm(team_wav)]

    def make(seconds: float) -> Path:
        path = out / f"speech-{seconds:g}s.wav"
        if not path.exists():
            chunks, total, i = [], 0, 0
            while total < seconds * 16000:
                chunks.append(pieces[i % 2])
                total += len(pieces[i % 2])
                i += 1
            write_wav(path, np.concatenate(chunks))
        return path

    return make


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """`python -m whisper_service` in a subprocess, its JSON log lines collected."""

    proc: subprocess.Popen[str]
    logs: list[dict] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    grpc_port: int = 0
    metrics_port: int = 0
    reader: threading.Thread | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def read_logs(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.logs.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    def wait_log(self, predicate: Callable[[dict], bool], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in list(self.logs):
                if predicate(entry):
                    return entry
            if self.reader is not None and not self.reader.is_alive():
                break  # the process closed stderr: it has exited
            time.sleep(0.05)
        raise AssertionError(f"log line not seen; output so far:\n{''.join(self.raw)}")

    def wait_serving(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        self.wait_log(lambda e: e.get("msg", "").startswith("serving"), timeout)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def server_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHISPER_")}
    env.update(
        {
            "WHISPER_HOST": "127.0.0.1",
            "WHISPER_PORT": "0",
            "WHISPER_METRICS_PORT": "0",
            "WHISPER_ENGINE": "pocketsphinx",
            "WHISPER_MODEL_DIR": "/nonexistent/whisper-model",
            "LOG_JSON": "true",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


def start_server(**overrides: str) -> ServerProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "whisper_service"],
        env=server_env(**overrides),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = ServerProcess(proc)
    server.reader = threading.Thread(target=server.read_logs, daemon=True)
    server.reader.start()
    listening = server.wait_log(lambda e: "grpc_port" in e, SERVER_START_TIMEOUT)
    server.grpc_port = listening["grpc_port"]
    server.metrics_port = listening["metrics_port"]
    return server


@pytest.fixture
def spawn_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with env overrides; every one is stopped (and reaped) afterwards."""
    started: list[ServerProcess] = []

    def spawn(**overrides: str) -> ServerProcess:
        server = start_server(**overrides)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()


# Limits of the shared server, small so the tests can cross them cheaply.
SHARED_LIMITS = {
    "WHISPER_MAX_AUDIO_SECONDS": "45",
    "WHISPER_MAX_MESSAGE_MB": "1",
    "WHISPER_MAX_STREAM_MB": "2",
    "WHISPER_WORKERS": "2",
}


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One pocketsphinx server shared by the tests that do not stop or reconfigure it."""
    process = start_server(**SHARED_LIMITS)
    try:
        process.wait_serving()
        yield process
    finally:
        process.stop()


@pytest.fixture
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.TranscriberStub:
    return pb_grpc.TranscriberStub(channel)


def stream_requests(
    path: Path | bytes, language: str = "", chunk: int = 64 * 1024
) -> Iterator[pb.TranscribeRequest]:
    data = path if isinstance(path, bytes) else path.read_bytes()
    name = "upload" if isinstance(path, bytes) else path.name
    yield pb.TranscribeRequest(options=pb.TranscriptionOptions(language=language, filename=name))
    for offset in range(0, len(data), chunk):
        yield pb.TranscribeRequest(audio_chunk=data[offset : offset + chunk])


def health_status(target: str, service: str = "", timeout: float = 5) -> int:
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return int(reply.status)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        if metric != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Helpers:
    """The plain functions above, for test modules (importlib mode: conftest is not importable)."""

    stream_requests = staticmethod(stream_requests)
    health_status = staticmethod(health_status)
    metric_value = staticmethod(metric_value)
    wait_until = staticmethod(wait_until)
    read_pcm = staticmethod(read_pcm)
    write_wav = staticmethod(write_wav)
    noise = staticmethod(noise)
    make_video = staticmethod(make_video)
    free_port = staticmethod(free_port)
    start_server = staticmethod(start_server)
    server_env = staticmethod(server_env)
    alice_words = ALICE_WORDS
    team_words = TEAM_WORDS


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
