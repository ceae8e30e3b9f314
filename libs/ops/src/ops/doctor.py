"""`inv doctor`: is this machine ready to run the stack, and if not, what to do."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from common.environments import MONITORING_PORTS
from ops import binaries, docker, project
from ops.env import file as env_file
from ops.environment import Environment

Status = Literal["ok", "warn", "fail"]

GIB = 1024**3
DISK_FAIL_BYTES = 1 * GIB
DISK_WARN_BYTES = 5 * GIB


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


def check_python(version: tuple[int, int, int] | None = None) -> Finding:
    required = SpecifierSet(project.pyproject()["project"]["requires-python"])
    current = ".".join(map(str, version or sys.version_info[:3]))
    if Version(current) in required:
        return Finding("python", "ok", f"{current} (requires {required})")
    return Finding(
        "python",
        "fail",
        f"{current} does not satisfy requires-python {required}",
        "install a matching Python, e.g. `uv python install 3.11`",
    )


def check_uv() -> Finding:
    spec = SpecifierSet(project.pyproject()["tool"]["uv"].get("required-version", ""))
    uv = shutil.which("uv")
    if uv is None:
        return Finding("uv", "fail", "uv not found on PATH", "`pip install uv`")
    out = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False).stdout
    try:
        version = Version(out.split()[1])
    except (IndexError, InvalidVersion):
        return Finding("uv", "fail", f"cannot read the version of {uv}: {out!r}", "reinstall uv")
    if version not in spec:
        return Finding(
            "uv", "fail", f"{version} does not satisfy {spec}", "`pip install --upgrade uv`"
        )
    return Finding("uv", "ok", f"{version} ({spec or 'any'})")


def check_git() -> Finding:
    if shutil.which("git") is None:
        return Finding("git", "warn", "git not found: pre-commit hooks cannot run", "install git")
    return Finding("git", "ok", "found")


def check_docker() -> Finding:
    status = docker.engine_status()
    if status.reachable:
        return Finding("docker engine", "ok", status.detail)
    # The local runtime needs no Docker, so a missing engine only limits the choice.
    return Finding(
        "docker engine",
        "warn",
        f"{status.detail}; `inv up` will use the local runtime",
        "start Docker for `--runtime compose`, or keep using `--runtime local`",
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: without it, TIME_WAIT leftovers of a just-stopped stack look busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def check_binaries() -> list[Finding]:
    """What the local runtime runs: found where, or what installs it."""
    findings = []
    for binary in binaries.all_for_local_runtime():
        optional = binary.name in {"ollama", "prometheus"}
        if binary.path is not None:
            findings.append(Finding(binary.name, "ok", f"{binary.origin}: {binary.path}"))
        else:
            status: Status = "warn" if optional else "fail"
            findings.append(Finding(binary.name, status, "not found", binary.fix))
    return findings


def _stack_running(env: Environment) -> bool:
    from ops.runtimes.local import LocalRuntime

    return LocalRuntime(env).is_running()


def check_ports(env: Environment) -> list[Finding]:
    env_path = env.env_file
    ports = {**env.default_ports, **env_file.read_ports(env_path)}
    source = env_path.name if env_path.exists() else "defaults"
    if _stack_running(env):
        return [Finding("ports", "ok", f"in use by the running {env} stack ({source})")]
    findings = []
    for key, port in ports.items():
        if port_is_free(port):
            findings.append(Finding(f"port {key}", "ok", f"{port} free ({source})"))
        else:
            # Flower's and Prometheus's ports matter only to `inv up --monitoring`.
            status: Status = "warn" if key in MONITORING_PORTS else "fail"
            findings.append(
                Finding(
                    f"port {key}",
                    status,
                    f"{port} is in use by another process",
                    f"stop that process or set {key} to a free port in {env_path.name}",
                )
            )
    return findings


def check_disk() -> Finding:
    free = shutil.disk_usage(project.root()).free
    detail = f"{free / GIB:.1f} GiB free under {project.root()}"
    if free < DISK_FAIL_BYTES:
        return Finding("disk", "fail", detail, "free at least 1 GiB (models and images need more)")
    if free < DISK_WARN_BYTES:
        return Finding("disk", "warn", detail, "models and images need a few GiB")
    return Finding("disk", "ok", detail)


def run(env: Environment) -> list[Finding]:
    checks: Iterable[Callable[[], Finding | list[Finding]]] = (
        check_python,
        check_uv,
        check_git,
        check_docker,
        check_binaries,
        lambda: check_ports(env),
        check_disk,
    )
    findings: list[Finding] = []
    for check in checks:
        result = check()
        findings.extend(result if isinstance(result, list) else [result])
    return findings


def as_dicts(findings: Iterable[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]
