"""The llm analyzer against the real llm service, settings validation, backoff, the CLI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mi_testing import free_port
from worker.__main__ import worker_argv
from worker.analyzer import LLMAnalyzer
from worker.config import WorkerSettings
from worker.errors import PermanentError, TransientError
from worker.tasks import backoff_seconds

BASE = {"database_url": "postgresql://u@localhost/db", "redis_url": "redis://localhost:6379/0"}


def test_analysis_through_the_real_llm_service(llm_url: str) -> None:
    analyzer = LLMAnalyzer(llm_url, timeout=30)
    try:
        result = analyzer.analyze(
            "Alice will send the budget report by Friday. Bob will review the design.",
            language="en",
            reference_date=None,
        )
    finally:
        analyzer.close()
    assert result.engine == "extractive"
    assert any(item.owner == "Alice" for item in result.action_items)


def test_a_rejected_transcript_is_permanent(llm_url: str) -> None:
    analyzer = LLMAnalyzer(llm_url, timeout=30)
    with pytest.raises(PermanentError, match="422"):
        analyzer.analyze("   ", language=None, reference_date=None)


def test_an_unreachable_llm_is_transient() -> None:
    analyzer = LLMAnalyzer(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(TransientError, match="unreachable"):
        analyzer.analyze("text", language=None, reference_date=None)


def test_settings_defaults_and_normalisation() -> None:
    settings = WorkerSettings(**BASE)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.queues == ["pipeline", "transcribe", "analyze"]
    assert settings.worker_visibility_timeout > settings.worker_time_limit


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"worker_visibility_timeout": 1900, "worker_time_limit": 2000}, "VISIBILITY_TIMEOUT"),
        ({"worker_soft_time_limit": 60, "worker_time_limit": 50}, "SOFT_TIME_LIMIT"),
        ({"worker_queues": "transcribe,gpu"}, "unknown queue"),
        ({"redis_url": "http://localhost"}, "redis://"),
        ({"database_url": "sqlite:///x.db"}, "postgresql"),
    ],
)
def test_inconsistent_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkerSettings(**{**BASE, **overrides})


def test_backoff_grows_exponentially_within_bounds() -> None:
    for retries, (low, high) in enumerate([(1, 2), (2, 4), (4, 8), (8, 10), (8, 10)]):
        delays = [backoff_seconds(retries, base=2, cap=10) for _ in range(50)]
        assert all(low / 2 <= d <= high for d in delays), (retries, delays)
        assert min(delays) >= min(high, 10) / 2


def test_worker_argv_defaults_and_passthrough() -> None:
    settings = WorkerSettings(**BASE, worker_concurrency=3, log_level="DEBUG")
    argv = worker_argv(settings, ["--queues", "transcribe"])
    assert argv[:4] == [
        "worker",
        "--queues=pipeline,transcribe,analyze",
        "--loglevel=DEBUG",
        "--concurrency=3",
    ]
    assert argv[-2:] == ["--queues", "transcribe"]  # later options win in Celery's parser


@pytest.mark.slow
def test_sigterm_is_a_warm_shutdown(start_worker: object) -> None:
    from mi_testing import ServiceProcess

    assert callable(start_worker)
    worker: ServiceProcess = start_worker()
    assert worker.stop(timeout=30) == 0
    assert "Warm shutdown" in worker.log() or "warm shutdown" in worker.log().lower()
