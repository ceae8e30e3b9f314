"""The worker sends the service credential: its clients, built from its settings as in a pool
process, against a real whisper and llm that require SERVICE_TOKEN (staging)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mi_testing import services
from worker import resources
from worker.config import WorkerSettings
from worker.errors import TransientError

TOKEN = "staging-service-token-0123456789abcdef"
ALICE = Path(__file__).parents[2] / "whisper" / "tests" / "fixtures" / "alice.wav"


@pytest.fixture(scope="module")
def staging_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    logs = tmp_path_factory.mktemp("staging")
    with (
        services.whisper(logs, APP_ENV="staging", SERVICE_TOKEN=TOKEN) as whisper,
        services.llm(logs, APP_ENV="staging", SERVICE_TOKEN=TOKEN) as llm,
    ):
        yield whisper, llm


def _resources(
    staging_services: tuple[str, str], token: str, database_url: str, redis_url: str, tmp: Path
) -> resources.Resources:
    whisper, llm = staging_services
    settings = WorkerSettings(
        database_url=database_url,
        redis_url=redis_url,
        whisper_url=whisper,
        llm_url=llm,
        service_token=token,
        media_dir=tmp,
        whisper_retry_attempts=1,
    )  # type: ignore[call-arg]
    return resources.build(settings)


def test_the_worker_s_clients_send_the_credential(
    staging_services: tuple[str, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    built = _resources(staging_services, TOKEN, database_url, redis_url, tmp_path)
    try:
        transcript = built.transcriber.transcribe(ALICE)
        assert "alice" in transcript.text.split()
        analysis = built.analyzer.analyze(
            "Alice will send the budget report by Friday.", language="en", reference_date=None
        )
        assert analysis.action_items
    finally:
        built.close()


def test_a_worker_with_the_wrong_credential_is_refused(
    staging_services: tuple[str, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    built = _resources(staging_services, "a-wrong-token", database_url, redis_url, tmp_path)
    try:
        with pytest.raises(TransientError, match="refused the service credential"):
            built.transcriber.transcribe(ALICE)
        with pytest.raises(TransientError, match="refused the service credential"):
            built.analyzer.analyze("Alice will send it.", language="en", reference_date=None)
    finally:
        built.close()
