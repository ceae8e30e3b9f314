"""What every runtime does. Tasks only talk to this interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ServiceState:
    """One service as `inv ps` shows it."""

    service: str
    state: str  # running | starting | stopped | exited | failed | unhealthy | healthy
    ident: str  # pid (local) or container name (compose)
    uptime: str = ""
    url: str = ""


class Runtime(Protocol):
    name: str

    def up(self, env: str, *, timeout: float) -> None:
        """Start everything for `env` and return once healthy; idempotent."""

    def down(self, env: str, *, volumes: bool) -> None:
        """Stop everything for `env`; with `volumes`, delete its data too."""

    def ps(self, env: str) -> list[ServiceState]:
        """The state of every service of `env` (empty when nothing runs)."""

    def logs(self, env: str, *, service: str | None, follow: bool, tail: int) -> None:
        """Print the services' logs to stdout."""

    def is_running(self, env: str) -> bool:
        """Whether any part of `env`'s stack is up."""
