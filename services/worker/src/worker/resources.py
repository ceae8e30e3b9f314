"""Per-process clients: database, Redis, the recordings store, the llm service (HTTP) and
whisper (gRPC).

Built lazily in the process that uses them: Celery's prefork pool forks children from the
main process, and neither database connections nor gRPC channels survive a fork.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from celery import signals
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from meetings.session import sync_engine, sync_sessions
from recordings import MediaStore, open_store
from worker import tracing
from worker.analyzer import Analyzer, LLMAnalyzer
from worker.config import WorkerSettings, get_settings
from worker.transcriber import Transcriber, WhisperTranscriber


@dataclass
class Resources:
    settings: WorkerSettings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    media: MediaStore
    _transcriber: Transcriber | None = field(default=None, repr=False)
    _analyzer: Analyzer | None = field(default=None, repr=False)

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = WhisperTranscriber(
                self.settings.whisper_url,
                timeout=self.settings.whisper_timeout,
                attempts=self.settings.whisper_retry_attempts,
                token=self.settings.service_token.get_secret_value(),
            )
        return self._transcriber

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = LLMAnalyzer(
                self.settings.llm_url,
                timeout=self.settings.llm_timeout,
                token=self.settings.service_token.get_secret_value(),
            )
        return self._analyzer

    def close(self) -> None:
        if self._transcriber is not None:
            self._transcriber.close()
        if self._analyzer is not None:
            self._analyzer.close()
        self.redis.close()
        self.engine.dispose()


def build(settings: WorkerSettings) -> Resources:
    # One connection per pool process is enough: a process runs one task at a time.
    engine = sync_engine(settings.database_url, pool_size=1, max_overflow=2)
    return Resources(
        settings=settings,
        engine=engine,
        sessions=sync_sessions(engine),
        redis=Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5),
        media=open_store(settings),
    )


_current: Resources | None = None
_owner_pid: int | None = None


def get() -> Resources:
    """This process's resources, built on first use (after any fork)."""
    global _current, _owner_pid
    if _current is None or _owner_pid != os.getpid():
        if _current is not None:
            # Inherited through fork (the main process built its own after a hard time limit):
            # drop the parent's connections without closing them, which would end its sessions.
            _current.engine.dispose(close=False)
        _current = build(get_settings())
        _owner_pid = os.getpid()
    return _current


@signals.worker_process_init.connect
def _warm_up(**_: Any) -> None:
    # Build the clients when the pool process starts, not inside the first task, whose
    # time limit would otherwise pay for loading CA certificates and connection pools.
    # Tracing first: it instruments the gRPC and httpx clients as they are created.
    tracing.instrument_pool_process(get_settings())
    get()


@signals.worker_process_shutdown.connect
def _close(**_: Any) -> None:
    global _current
    if _current is not None and _owner_pid == os.getpid():
        _current.close()
        _current = None
