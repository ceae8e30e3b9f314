"""A whole local stack (`inv up --env dev --runtime local`) on free loopback ports, shared by
the drills in this folder: pocketsphinx and the extractive llm (no model download) and short
worker timings, so a drill stays within minutes on two cores."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mi_testing import free_port
from ops.runtimes.local.supervisor import Layout, Supervisor

# Short timings so a killed worker's messages and lost meetings come back within seconds;
# every consistency rule of the worker settings still holds (visibility > time limit > soft).
STACK_SETTINGS = {
    "WHISPER_ENGINE": "pocketsphinx",
    "LLM_ENGINE": "extractive",
    "SEARCH_EMBEDDINGS": "false",
    "MODELS_AUTO_PULL": "false",
    "WORKER_CONCURRENCY": "2",
    "WORKER_SOFT_TIME_LIMIT": "30",
    "WORKER_TIME_LIMIT": "35",
    "WORKER_VISIBILITY_TIMEOUT": "40",
    "WORKER_RESTORE_INTERVAL": "2",
    "WORKER_RETRY_BACKOFF": "0.5",
    "WORKER_RETRY_BACKOFF_MAX": "4",
    "WORKER_MAX_RETRIES": "8",
    "WORKER_SWEEP_INTERVAL": "3",
    "WORKER_SWEEP_STALE_AFTER": "8",
    "WHISPER_RETRY_ATTEMPTS": "3",
}


@dataclass
class Stack:
    checkout: Path
    values: dict[str, str]
    supervisor: Supervisor

    @property
    def base(self) -> str:
        return f"http://{self.values['BACKEND_HOST']}:{self.values['BACKEND_PORT']}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.values['API_TOKEN']}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=15)

    def pid(self, name: str) -> int | None:
        info = next(i for i in self.supervisor.info() if i["name"] == name)
        return int(info["pid"]) if info["statename"] == "RUNNING" and info["pid"] else None

    def log(self, name: str) -> str:
        return self.supervisor.layout.log_of(name).read_text(errors="replace")


@contextmanager
def local_stack(make_checkout: Callable[[str], Path], make_inv: Any, name: str) -> Iterator[Stack]:
    """`inv up --env dev --runtime local` in a scratch checkout; `inv down` after."""
    # Outside pytest's basetemp: another pytest run on this machine resets that to mode 0700,
    # and a Postgres restarted as its own system user (when run as root) could no longer
    # reach its data directory.
    home = Path(tempfile.mkdtemp(prefix=f"mi-{name}-"))
    home.chmod(0o755)
    checkout = Path(shutil.move(make_checkout(name), home / "checkout"))
    inv = make_inv(checkout, default_timeout=300)
    assert inv("env.setup", "--env", "dev").returncode == 0
    env_file = checkout / ".env.dev"
    lines = env_file.read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}
    overrides = {k: str(free_port()) for k in keys if k.endswith("_PORT")} | STACK_SETTINGS
    # In place: later lines interpolate earlier ones (DATABASE_URL uses ${POSTGRES_PORT}).
    written = [
        f"{key}={overrides[key]}" if (key := line.split("=", 1)[0]) in overrides else line
        for line in lines
    ]
    written += [f"{k}={v}" for k, v in overrides.items() if k not in keys]
    env_file.write_text("\n".join(written) + "\n")
    values = dict(line.split("=", 1) for line in written if "=" in line and line[0] != "#")
    up = inv("up", "--env", "dev", "--runtime", "local", "--offline", "--timeout", "240")
    try:
        assert up.returncode == 0, f"inv up failed:\n{up.stdout}\n{up.stderr}"
        yield Stack(checkout, values, Supervisor(Layout(checkout / ".data" / "dev")))
    finally:
        down = inv("down", "--env", "dev")
        assert down.returncode == 0 or "not running" in down.stderr, down.stderr
        shutil.rmtree(home, ignore_errors=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return (
        platform.processor()
        or subprocess.run(
            ["uname", "-m"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
