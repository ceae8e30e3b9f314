"""Readiness probes for /health/ready: each raises when its dependency is unusable.

The database and Redis are required (no upload can be accepted without them). whisper and
llm are reported but optional: the API keeps accepting uploads while they are down and the
worker retries, so they must not take the API out of a load balancer.
"""

from __future__ import annotations

from grpc import aio
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common import grpc_health
from common.health import Check


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
