"""Engines and sessions: async for the API, sync for the worker and migrations."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker


def async_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    # No pool_pre_ping: it would add a round trip to every request. After a Postgres restart
    # the first query on each stale connection fails once; SQLAlchemy then recycles the pool.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800
    )


def async_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are built from objects after commit without reloading.
    return async_sessionmaker(engine, expire_on_commit=False)


def sync_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)


def sync_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
