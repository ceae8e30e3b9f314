#!/usr/bin/env python3
"""A Docker engine to build and run the stack on: the one that answers, or one started here.

    python scripts/airgap/engine.py start    # prints DOCKER_HOST=... (empty: the CLI default)
    python scripts/airgap/engine.py stop     # stops the engine `start` started, nothing else
    python scripts/airgap/engine.py status

`start` reuses an engine that already answers (DOCKER_HOST, else the CLI's default socket).
Otherwise, as root, it starts Debian's dockerd (`apt-get install docker.io`) with its own
state, so it never shares a data root with a system Docker that might start later:

    data root   $MI_ENGINE_ROOT/data (default /var/lib/mi-docker/data; images and build cache
                survive `stop`, so the next run builds from cache)
    socket      /run/mi-docker/docker.sock     log  $MI_ENGINE_ROOT/dockerd.log

`stop` only stops a dockerd whose pid this tool recorded, and waits until it and the
containerd it spawned are gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUN_DIR = Path("/run/mi-docker")
SOCKET = RUN_DIR / "docker.sock"
PIDFILE = RUN_DIR / "dockerd.pid"
STARTED_MARK = RUN_DIR / "started-by-engine.py"  # holds the pid this tool started
DEFAULT_ROOT = Path("/var/lib/mi-docker")


class EngineError(RuntimeError):
    """No engine, and none can be started here; the message says what to do."""


@dataclass(frozen=True)
class Engine:
    host: str  # the DOCKER_HOST to use; '' means the docker CLI's default
    pid: int | None  # the dockerd this tool started, None when it found one running
    detail: str

    def env(self) -> dict[str, str]:
        """os.environ for commands that must reach this engine."""
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env


def engine_root() -> Path:
    return Path(os.environ.get("MI_ENGINE_ROOT") or DEFAULT_ROOT)


def server_version(host: str | None, timeout: float = 10) -> str | None:
    """The engine's version when `docker version` reaches it through `host`, else None."""
    cli = shutil.which("docker")
    if cli is None:
        return None
    env = dict(os.environ)
    if host is not None:
        env.pop("DOCKER_HOST", None)
        if host:
            env["DOCKER_HOST"] = host
    try:
        proc = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def find_running() -> Engine | None:
    """An engine that answers already: DOCKER_HOST's (or the default), else ours from before."""
    configured = os.environ.get("DOCKER_HOST", "")
    version = server_version(None)
    if version:
        where = configured or "the default socket"
        return Engine(configured, None, f"reusing the engine at {where} ({version})")
    ours = f"unix://{SOCKET}"
    if configured != ours and SOCKET.exists():
        version = server_version(ours)
        if version:
            # Left running by an earlier start (a crashed run): still ours to stop.
            pid = _read_pid(STARTED_MARK)
            pid = pid if pid is not None and _alive(pid) else None
            return Engine(ours, pid, f"reusing the engine at {ours} ({version})")
    return None


def start(*, wait: float = 90) -> Engine:
    """Reuse an engine that answers, else start dockerd (needs root and docker.io)."""
    running = find_running()
    if running is not None:
        return running
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    if dockerd is None:
        raise EngineError(
            "no Docker engine answers and dockerd is not installed: "
            "`apt-get install docker.io` (or start Docker and set DOCKER_HOST)"
        )
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers, and starting dockerd needs root: "
            "start Docker yourself (or run as root) and set DOCKER_HOST if it is not the default"
        )
    if shutil.which("docker") is None:
        raise EngineError("the docker CLI is not installed: `apt-get install docker.io`")
    root = engine_root()
    (root / "data").mkdir(parents=True, exist_ok=True)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    stale = _read_pid(PIDFILE)
    if stale is not None and not _alive(stale):
        PIDFILE.unlink(missing_ok=True)
    log = root / "dockerd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                dockerd,
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(RUN_DIR / "exec"),
                "--pidfile",
                str(PIDFILE),
                "-H",
                f"unix://{SOCKET}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C to the caller must not kill it mid-cleanup
        )
    STARTED_MARK.write_text(f"{proc.pid}\n")
    host = f"unix://{SOCKET}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            STARTED_MARK.unlink(missing_ok=True)
            raise EngineError(f"dockerd exited with {proc.returncode}:\n{_tail(log)}")
        version = server_version(host, timeout=5)
        if version:
            return Engine(host, proc.pid, f"started dockerd {version} (pid {proc.pid}) at {host}")
        time.sleep(0.5)
    stop_pid(proc.pid)
    raise EngineError(f"dockerd did not answer within {wait:g}s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_pid(pid: int, *, timeout: float = 60) -> None:
    """SIGTERM the dockerd, wait; then the containerd it spawned, if it outlived it."""
    containerd = _read_pid(RUN_DIR / "exec" / "containerd" / "containerd.pid")
    for target in (pid, containerd):
        if target is None or not _alive(target):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(target) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(target, os.WNOHANG)  # reap it when it is our child
            time.sleep(0.2)
        if _alive(target):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
    STARTED_MARK.unlink(missing_ok=True)


def stop(engine: Engine | None = None) -> str:
    """Stop the engine this tool started (`engine`, else the one recorded); leave others."""
    pid = engine.pid if engine is not None else _read_pid(STARTED_MARK)
    if engine is not None and engine.pid is None:
        return "left the engine running: this tool did not start it"
    if pid is None or not _alive(pid):
        STARTED_MARK.unlink(missing_ok=True)
        return "no engine started by this tool is running"
    stop_pid(pid)
    return f"stopped dockerd (pid {pid})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            engine = start()
            print(engine.detail, file=sys.stderr)
            print(f"DOCKER_HOST={engine.host}")
        elif args.command == "stop":
            print(stop(), file=sys.stderr)
        else:
            running = find_running()
            print(running.detail if running else "no engine answers", file=sys.stderr)
            return 0 if running else 1
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
