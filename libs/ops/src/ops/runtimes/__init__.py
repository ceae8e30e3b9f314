"""Two ways to run the same stack: supervised local processes, or docker compose.

`select()` turns `--runtime auto|local|compose` into one of them, bound to one environment,
and remembers which runtime started the stack, so `down`, `ps`, `logs`, backups and
migrations find it again (`running()`).
"""

from __future__ import annotations

from pathlib import Path

from ops import console
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes.base import Runtime, ServiceState, StackData

__all__ = [
    "RUNTIMES",
    "Runtime",
    "ServiceState",
    "StackData",
    "recorded",
    "remember",
    "running",
    "select",
]

RUNTIMES = ("auto", "local", "compose")


def _marker(env: Environment) -> Path:
    return env.data_dir / "runtime"


def recorded(env: Environment) -> str | None:
    """The runtime that last started `env`, if its stack may still be running."""
    marker = _marker(env)
    return marker.read_text().strip() if marker.exists() else None


def remember(env: Environment, runtime: str | None) -> None:
    marker = _marker(env)
    if runtime is None:
        marker.unlink(missing_ok=True)
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(runtime + "\n")


def _make(name: str, env: Environment) -> Runtime:
    if name == "local":
        from ops.runtimes.local import LocalRuntime

        return LocalRuntime(env)
    from ops.runtimes.compose import ComposeRuntime

    return ComposeRuntime(env)


def select(requested: str, env: Environment, *, announce: bool = True) -> Runtime:
    """The runtime to use. `auto`: the one already running `env`, else compose when a
    Docker engine answers, else local. An explicit `compose` with no engine is an error."""
    from ops import docker

    if requested not in RUNTIMES:
        raise OpsError(
            f"unknown runtime {requested!r}", f"use --runtime with one of: {', '.join(RUNTIMES)}", 2
        )
    if requested == "compose":
        status = docker.engine_status()
        if not status.reachable:
            raise OpsError(
                f"--runtime compose needs a Docker engine: {status.detail}",
                "start Docker, or use `--runtime local` (no Docker needed)",
            )
    if requested != "auto":
        return _make(requested, env)
    name = recorded(env)
    reason = "it started this environment"
    if name is None:
        status = docker.engine_status(timeout=3)
        name = "compose" if status.reachable else "local"
        reason = status.detail if status.reachable else f"no Docker engine ({status.detail})"
    if announce:
        console.say(f"runtime: {name} ({reason})")
    return _make(name, env)


def running(env: Environment) -> Runtime:
    """The runtime whose stack holds `env`'s data: the one that started it, else local (which
    reaches the database directly when no stack of ours runs)."""
    return _make("compose" if recorded(env) == "compose" else "local", env)
