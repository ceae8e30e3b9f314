"""Dependencies the routes declare with `Annotated[..., Depends()]`.

Everything comes from `app.state`, filled by the lifespan in backend.main, so tests can build
an app around their own settings without touching globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from psycopg import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import BackendSettings
from recordings import MediaStore


def get_settings(request: Request) -> BackendSettings:
    settings: BackendSettings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """An autocommit psycopg connection for hand-written SQL on hot read paths."""
    async with request.app.state.read_pool.connection() as conn:
        yield conn


def get_task_queue(request: Request) -> Celery:
    queue: Celery = request.app.state.task_queue
    return queue


def get_media(request: Request) -> MediaStore:
    media: MediaStore = request.app.state.media
    return media


SettingsDep = Annotated[BackendSettings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadConnectionDep = Annotated[AsyncConnection, Depends(get_read_connection)]
TaskQueueDep = Annotated[Celery, Depends(get_task_queue)]
MediaDep = Annotated[MediaStore, Depends(get_media)]
