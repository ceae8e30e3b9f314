"""Fixtures for the worker tests: Celery workers as subprocesses and the API in-process.

Postgres, Redis, the real whisper and llm services and the spoken audio come from the
mi_testing plugin (`database_url`, `redis_url`, `whisper_target`, `llm_url`, `spoken_wav`).
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, ServiceProcess, free_port, speech, subprocess_env
from mi_testing.objectstore import MediaUnderTest

API_TOKEN = "worker-test-token-0123456789"


@pytest.fixture(scope="session")
def long_spoken_wav(spoken_wav: Path) -> Path:
    """The meeting six times over (about 40 s): transcription takes seconds, long enough to
    kill a worker in the middle of it or to run past a short time limit."""
    return speech.repeat(spoken_wav, spoken_wav.with_name("long-speech.wav"), times=6)


@pytest.fixture(scope="session")
def planning_meeting_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """speech.PLANNING_MEETING spoken by festival: what a real engine is held to, word by word."""
    return speech.speak(speech.PLANNING_MEETING, tmp_path_factory.mktemp("audio") / "plan.wav")


# --- workers and the API ------------------------------------------------------------------


@pytest.fixture
def worker_env(
    database_url: str,
    redis_url: str,
    media: MediaUnderTest,
    llm_url: str,
    whisper_target: str,
    tmp_path: Path,
) -> dict[str, str]:
    """Environment of a test worker: real services, short retry and recovery timings. Its
    recordings come from MEDIA_DIR, or from a bucket when MI_MEDIA_STORE=s3 (`nox -s s3`)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **media.env,
        "WORKER_SCRATCH_DIR": str(tmp_path / "worker-scratch"),
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
    database_url: str, redis_url: str, media: MediaUnderTest, llm_url: str, whisper_target: str
) -> BackendSettings:
    return BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        **media.fields,
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
