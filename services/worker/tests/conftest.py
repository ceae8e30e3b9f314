"""Fixtures for the worker tests: real Postgres and Redis (backend.testing), the real whisper
and llm services as subprocesses, Celery workers as subprocesses, and spoken test audio."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from backend.core.config import BackendSettings
from backend.main import create_app
from backend.testing import *  # noqa: F403 - registers the shared fixtures
from backend.testing import ApiServer, ServiceProcess, free_port, subprocess_env

API_TOKEN = "worker-test-token-0123456789"
SPEECH = (
    "Alice will send the budget report by Friday. Bob will review the design document next week."
)


# --- audio ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAV of SPEECH spoken by festival, which pocketsphinx transcribes well."""
    if shutil.which("text2wave") is None:
        pytest.skip("festival's text2wave is not installed (apt-get install festival)")
    folder = tmp_path_factory.mktemp("audio")
    script = folder / "speech.txt"
    script.write_text(SPEECH)
    target = folder / "speech.wav"
    subprocess.run(["text2wave", str(script), "-o", str(target)], check=True, timeout=120)
    return target


@pytest.fixture(scope="session")
def long_spoken_wav(spoken_wav: Path) -> Path:
    """SPEECH six times over (about 40 s): transcription takes seconds, long enough to kill a
    worker in the middle of it or to run past a short time limit."""
    target = spoken_wav.with_name("long-speech.wav")
    with wave.open(str(spoken_wav), "rb") as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    silence = b"\x00" * (params.sampwidth * params.nchannels * params.framerate // 2)
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes((frames + silence) * 6)
    return target


# --- the real whisper and llm services ----------------------------------------------------


def _grpc_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="session")
def whisper_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m whisper_service` with the offline pocketsphinx engine; yields host:port."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    service = ServiceProcess(
        [sys.executable, "-m", "whisper_service"],
        subprocess_env(
            WHISPER_HOST="127.0.0.1",
            WHISPER_PORT=str(port),
            WHISPER_METRICS_PORT=str(free_port()),
            WHISPER_ENGINE="pocketsphinx",
            WHISPER_WORKERS="2",
            LOG_JSON="false",
        ),
        tmp_path_factory.mktemp("whisper") / "whisper.log",
    ).start()
    try:
        service.wait_until(lambda: _grpc_serving(target), timeout=120, what="whisper SERVING")
        yield target
    finally:
        service.stop()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llm_service` with the offline extractive engine; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = ServiceProcess(
        [sys.executable, "-m", "llm_service"],
        subprocess_env(
            LLM_HOST="127.0.0.1", LLM_PORT=str(port), LLM_ENGINE="extractive", LOG_JSON="false"
        ),
        tmp_path_factory.mktemp("llm") / "llm.log",
    ).start()
    try:
        service.wait_until(lambda: _http_ok(f"{url}/health"), timeout=60, what="llm /health")
        yield url
    finally:
        service.stop()


# --- workers and the API ------------------------------------------------------------------


@pytest.fixture
def worker_env(
    database_url: str, redis_url: str, media_dir: Path, llm_url: str, whisper_target: str
) -> dict[str, str]:
    """Environment of a test worker: real services, short retry and recovery timings."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_DIR": str(media_dir),
        "WHISPER_URL": whisper_target,
        "LLM_URL": llm_url,
        "LOG_JSON": "false",
        "LOG_LEVEL": "INFO",
        "WORKER_MAX_RETRIES": "2",
        "WORKER_RETRY_BACKOFF": "0.2",
        "WORKER_RETRY_BACKOFF_MAX": "1",
        "WORKER_SOFT_TIME_LIMIT": "60",
        "WORKER_TIME_LIMIT": "70",
        "WORKER_VISIBILITY_TIMEOUT": "75",
        "WORKER_RESTORE_INTERVAL": "1",
        "WHISPER_TIMEOUT": "50",
        "WHISPER_RETRY_ATTEMPTS": "2",
        "LLM_TIMEOUT": "30",
    }


StartWorker = Callable[..., ServiceProcess]


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[StartWorker]:
    """Start `python -m worker` subprocesses; every one is stopped after the test."""
    started: list[ServiceProcess] = []
    numbers = itertools.count(1)

    def start(*args: str, wait: bool = True, **env: str) -> ServiceProcess:
        number = next(numbers)
        service = ServiceProcess(
            [
                sys.executable,
                "-m",
                "worker",
                f"--hostname=test{number}-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
                *args,
            ],
            # Each worker its own metrics port: several run at once, next to a dev stack.
            subprocess_env(**{"WORKER_METRICS_PORT": str(free_port()), **worker_env, **env}),
            tmp_path / f"worker{number}.log",
        ).start()
        started.append(service)
        if wait:
            service.wait_until(lambda: " ready." in service.log(), timeout=60, what="worker ready")
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def api_settings(
    database_url: str, redis_url: str, media_dir: Path, llm_url: str, whisper_target: str
) -> BackendSettings:
    return BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        media_dir=media_dir,
        whisper_url=whisper_target,
        llm_url=llm_url,
    )


@pytest.fixture
def client(api_settings: BackendSettings) -> Iterator[httpx.Client]:
    with (
        ApiServer(create_app(api_settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        ) as http,
    ):
        yield http


@pytest.fixture
def count_rows(database_url: str) -> Iterator[Callable[[str], int]]:
    engine = create_engine(database_url)

    def count(table: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608

    yield count
    engine.dispose()
