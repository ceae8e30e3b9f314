"""Is there a Docker engine to talk to? Answers quickly, never hangs."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineStatus:
    cli: str | None
    server_version: str | None
    detail: str

    @property
    def reachable(self) -> bool:
        return self.server_version is not None


def engine_status(timeout: float = 5.0) -> EngineStatus:
    """Ask `docker version` for the server version; a missing CLI or engine is not an error."""
    cli = shutil.which("docker")
    if cli is None:
        return EngineStatus(None, None, "docker CLI not found on PATH")
    try:
        proc = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return EngineStatus(cli, None, f"docker engine did not answer within {timeout:g}s")
    version = proc.stdout.strip()
    if proc.returncode == 0 and version:
        return EngineStatus(cli, version, f"engine {version}")
    reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
    return EngineStatus(cli, None, f"no engine answers: {reason}")
