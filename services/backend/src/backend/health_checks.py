"""Readiness probes for /health/ready: each raises when its dependency is unusable.

The database and Redis are required (no upload can be accepted without them). whisper and
llm are reported but optional: the API keeps accepting uploads while they are down and the
worker retries, so they must not take the API out of a load balancer. The recordings store is
reported but optional too: while it is down uploads answer 503 saying so, and every meeting
already processed can still be read.
"""

from __future__ import annotations

import anyio
from grpc import aio
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common import grpc_health
from common.health import Check
from recordings import MediaStore


def database_check(engine: AsyncEngine) -> Check:
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return Check("database", probe, required=True)


def redis_check(redis: Redis) -> Check:
    async def probe() -> None:
        await redis.ping()

    return Check("redis", probe, required=True)


def whisper_check(channel: aio.Channel, timeout: float = 2.0) -> Check:
    async def probe() -> str:
        return await grpc_health.check_async(channel, timeout=timeout)

    return Check("whisper", probe, required=False, timeout=timeout)


def llm_check(client: AsyncClient, llm_url: str) -> Check:
    async def probe() -> None:
        reply = await client.get(f"{llm_url.rstrip('/')}/health")
        reply.raise_for_status()

    return Check("llm", probe, required=False)


def media_check(store: MediaStore, timeout: float = 3.0) -> Check:
    async def probe() -> str:
        # Reading only: a readiness probe every few seconds must not write to the bucket.
        return await anyio.to_thread.run_sync(lambda: store.check(write=False))

    return Check("media", probe, required=False, timeout=timeout)
