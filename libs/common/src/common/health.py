"""Dependency checks run concurrently, each under its own timeout.

Used by the services' `/health/ready` endpoints and by `inv health`, so both report the same
shape: name, ok, required, latency and a detail that says what is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Probe = Callable[[], Awaitable[str | None]]
"""An async callable that raises when the dependency is unhealthy; may return a detail."""


@dataclass(frozen=True)
class Check:
    name: str
    probe: Probe
    required: bool = True
    timeout: float = 2.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    latency_ms: float
    detail: str = ""


@dataclass(frozen=True)
class HealthReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Healthy when every required check passed; optional ones only inform."""
        return all(r.ok for r in self.results if r.required)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "fail",
            "checks": {r.name: asdict(r) for r in self.results},
        }


async def _run_one(check: Check) -> CheckResult:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check.probe(), timeout=check.timeout)
    except TimeoutError:
        ok, detail = False, f"no answer within {check.timeout:g}s"
    except Exception as exc:  # any failure of a dependency is a result, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}".strip()
    else:
        ok = True
    latency_ms = round((time.perf_counter() - start) * 1000, 1)
    return CheckResult(check.name, ok, check.required, latency_ms, detail or "")


async def run_checks(checks: Sequence[Check]) -> HealthReport:
    """Run every check at once; total time is the slowest check, not the sum."""
    results = await asyncio.gather(*(_run_one(c) for c in checks))
    return HealthReport(list(results))
