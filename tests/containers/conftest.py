"""Fixtures for `nox -s containers`: an engine, a scratch checkout, stand-in and service images.

Nothing here touches the user's checkout or stack: the stack runs from a copy of the working
tree (git's view of it) with its own env files and free ports, its images are tagged under
IMAGE_PREFIX=mi-containers, and a reused engine that already runs a project of the same
name is refused rather than taken down.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_PREFIX = "mi-containers"
PROJECTS = ("mi-dev", "mi-staging")
PORT_KEYS = (
    "OBJECTSTORE_PORT",
    "BACKEND_PORT",
    "LLM_PORT",
    "WHISPER_PORT",
    "WHISPER_METRICS_PORT",
    "POSTGRES_PORT",
    "REDIS_PORT",
)
# Filled by the fixtures, printed at the end of the run (and written to $MI_CONTAINERS_REPORT).
REPORT: dict[str, Any] = {}
INV = (sys.executable, "-m", "invoke")
Run = Callable[..., subprocess.CompletedProcess[str]]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    write = terminalreporter.write_line
    terminalreporter.section("containers: build times and image sizes")
    for key in ("engine", "standins_seconds", "standins"):
        if key in REPORT:
            write(f"{key}: {REPORT[key]}")
    for label in ("first_build", "rebuild"):
        for env, report in (REPORT.get(label) or {}).items():
            images = ", ".join(
                f"{name} {image['seconds']:.0f}s" for name, image in report["images"].items()
            )
            write(f"{label} {env}: {report['seconds']:.1f}s ({images})")
    for image, size in (REPORT.get("sizes") or {}).items():
        write(f"size {image}: {size / 1e6:.0f} MB")
    for key in ("up_seconds", "pipeline_seconds"):
        for env, seconds in (REPORT.get(key) or {}).items():
            write(f"{key} {env}: {seconds:.1f}s")
    target = os.environ.get("MI_CONTAINERS_REPORT")
    if target:
        Path(target).write_text(json.dumps(REPORT, indent=2) + "\n")
        write(f"written to {target}")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def env_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def host_ca_bundle() -> str | None:
    """The CA bundle this machine trusts: what builds need behind a TLS-inspecting proxy, and
    harmless (public CAs only) where there is none."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def engine_module() -> ModuleType:
    return _load("airgap_engine", ROOT / "scripts/airgap/engine.py")


@pytest.fixture(scope="session")
def images_module() -> ModuleType:
    return _load("airgap_images", ROOT / "scripts/airgap/images.py")


@pytest.fixture(scope="session")
def engine(engine_module: ModuleType) -> Iterator[Any]:
    """The engine everything runs on; stopped at the end only if it was started here."""
    started = time.monotonic()
    try:
        running = engine_module.start()
    except engine_module.EngineError as exc:
        pytest.fail(f"no Docker engine: {exc}")
    REPORT["engine"] = f"{running.detail} in {time.monotonic() - started:.1f}s"
    try:
        busy = subprocess.run(
            [
                "docker",
                "ps",
                "-aq",
                *[f"--filter=label=com.docker.compose.project={p}" for p in PROJECTS],
            ],
            capture_output=True,
            text=True,
            env=running.env(),
            check=True,
        ).stdout.split()
        if busy and running.pid is None:
            pytest.fail(
                f"the engine at {running.host or 'the default socket'} already runs containers "
                f"of {' or '.join(PROJECTS)}: this session would take them down. Stop them, or "
                "point DOCKER_HOST at another engine (or none: then one is started here)"
            )
        yield running
    finally:
        if running.pid is not None:
            # Dangling images are replaced tags; the build cache and tagged images stay for
            # the next run's cache.
            subprocess.run(
                ["docker", "image", "prune", "--force"],
                capture_output=True,
                env=running.env(),
                check=False,
            )
        engine_module.stop(running)


@pytest.fixture(scope="session")
def checkout(make_checkout) -> Path:
    """The scratch checkout, with dev and staging env files on free ports."""
    root = make_checkout("checkout")
    for env in ("dev", "staging"):
        proc = subprocess.run(
            [*INV, "env.setup", "--env", env],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        path = root / f".env.{env}"
        text = path.read_text()
        for key, port in zip(PORT_KEYS, free_ports(len(PORT_KEYS)), strict=True):
            text, count = re.subn(rf"^{key}=.*$", f"{key}={port}", text, flags=re.M)
            assert count == 1, f"{key} is not in {path.name}"
        if env == "staging":
            # staging keeps its recordings in the stack's own object store (objectstore).
            text = re.sub(r"^MEDIA_STORE=.*$", "MEDIA_STORE=s3", text, flags=re.M)
        path.write_text(text)
    return root


@pytest.fixture(scope="session")
def stack_env(engine: Any, checkout: Path) -> dict[str, str]:
    """The environment every docker/compose/inv command of the session runs with."""
    uv_dir = str(Path(shutil.which("uv") or "/usr/bin/uv").parent)
    env = engine.env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), uv_dir, env["PATH"]])
    env["IMAGE_PREFIX"] = IMAGE_PREFIX
    env.pop("IMAGE_TAG", None)
    if not env.get("EXTRA_CA_FILE"):
        bundle = host_ca_bundle()
        if bundle:
            env["EXTRA_CA_FILE"] = bundle
    return env


@pytest.fixture(scope="session")
def run(checkout: Path, stack_env: dict[str, str]) -> Run:
    """Run a command in the scratch checkout with the session's environment."""

    def call(*argv: str, timeout: float = 900, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=checkout,
            capture_output=True,
            text=True,
            env={**stack_env, **extra},
            timeout=timeout,
            check=False,
        )

    return call


@pytest.fixture(scope="session")
def standins(run: Run, stack_env: dict[str, str]) -> dict[str, str]:
    """Stand-ins for the third-party images no registry answers for (`NAME=image` each); the
    session's environment uses them from here on."""
    started = time.monotonic()
    proc = run(sys.executable, "scripts/airgap/images.py", "standins", timeout=1800)
    assert proc.returncode == 0, f"stand-ins failed:\n{proc.stderr[-4000:]}"
    chosen = dict(line.split("=", 1) for line in proc.stdout.split())
    REPORT["standins_seconds"] = round(time.monotonic() - started, 1)
    REPORT["standins"] = chosen or "none needed: every public image is here or pullable"
    stack_env.update(chosen)
    return chosen


def build_images(run: Run, env: str, report: Path) -> dict[str, Any]:
    proc = run(
        sys.executable,
        "scripts/airgap/images.py",
        "services",
        "--env",
        env,
        "--report",
        str(report),
    )
    assert proc.returncode == 0, f"building the {env} images failed:\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.fixture(scope="session")
def images(
    standins: dict[str, str],
    run: Run,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """The production (staging) and development (dev) images of the four services, built
    twice: the first build (cold on a fresh engine) and an unchanged rebuild (all cached)."""
    reports = tmp_path_factory.mktemp("build-reports")
    built: dict[str, dict[str, Any]] = {}
    for label in ("first_build", "rebuild"):
        for env in ("staging", "dev"):
            built[env] = build_images(run, env, reports / f"{label}-{env}.json")
            REPORT.setdefault(label, {})[env] = built[env]
    REPORT["sizes"] = {
        image["image"]: image["size_bytes"]
        for env in built.values()
        for image in env["images"].values()
    }
    return built


@pytest.fixture(scope="session")
def ops_image(
    standins: dict[str, str], run: Run, stack_env: dict[str, str], images_module: ModuleType
) -> str:
    """The ops job image (libs/ops/Dockerfile, what Kubernetes' backup CronJob runs), built
    by the same BuildKit-capable CLI scripts/airgap/images.py picks."""
    from unittest import mock

    with mock.patch.dict(os.environ, stack_env):
        builder = images_module.find_builder()
    tag = f"{IMAGE_PREFIX}/ops:local"
    args = []
    for name in ("PYTHON_IMAGE", "UV_IMAGE"):
        if stack_env.get(name):
            args += ["--build-arg", f"{name}={stack_env[name]}"]
    started = time.monotonic()
    proc = run(
        *builder.argv,
        "--file",
        "libs/ops/Dockerfile",
        "--target",
        "runtime",
        "--tag",
        tag,
        "--secret",
        f"id=extra_ca,src={stack_env.get('EXTRA_CA_FILE') or '/dev/null'}",
        *args,
        ".",
        timeout=1800,
        **builder.env,
    )
    assert proc.returncode == 0, f"the ops image failed to build:\n{proc.stderr[-4000:]}"
    REPORT["ops_image_seconds"] = round(time.monotonic() - started, 1)
    size = run("docker", "image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
    REPORT.setdefault("sizes", {})[tag] = int(size or 0)
    return tag


def compose_leftovers(run: Run, project: str) -> dict[str, list[str]]:
    """Containers, volumes and networks of a compose project still on the engine."""
    label = f"--filter=label=com.docker.compose.project={project}"
    found = {}
    for kind, argv in {
        "containers": ["docker", "ps", "-aq", label],
        "volumes": ["docker", "volume", "ls", "-q", label],
        "networks": ["docker", "network", "ls", "-q", label],
    }.items():
        proc = run(*argv, timeout=60)
        assert proc.returncode == 0, proc.stderr
        found[kind] = proc.stdout.split()
    return found


@contextlib.contextmanager
def _compose_stack(run: Run, env: str) -> Iterator[None]:
    """`inv up --env <env> --runtime compose` ... `inv down --volumes`, leaving nothing."""
    started = time.monotonic()
    up = run(*INV, "up", "--env", env, "--runtime", "compose", "--timeout", "300")
    REPORT.setdefault("up_seconds", {})[env] = round(time.monotonic() - started, 1)
    try:
        if up.returncode != 0:
            logs = run(*INV, "logs", "--env", env, "--tail", "40")
            pytest.fail(
                f"inv up --env {env} failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}\n"
                f"{logs.stdout[-6000:]}"
            )
        try:
            yield
        except BaseException:
            # What the services said is the first thing anyone needs when a check fails.
            logs = run(*INV, "logs", "--env", env, "--tail", "60")
            print(f"--- the {env} stack's logs ---\n{logs.stdout[-10000:]}")  # noqa: T201
            raise
    finally:
        down = run(*INV, "down", "--env", env, "--volumes", "--yes")
        leftovers = compose_leftovers(run, f"mi-{env}")
        # Never leave a stack behind, even when `inv down` is what broke.
        if leftovers["containers"]:
            run("docker", "rm", "--force", "--volumes", *leftovers["containers"])
        if leftovers["volumes"]:
            run("docker", "volume", "rm", "--force", *leftovers["volumes"])
        if leftovers["networks"]:
            run("docker", "network", "rm", *leftovers["networks"])
        assert down.returncode == 0, f"inv down --env {env} failed:\n{down.stdout}\n{down.stderr}"
        assert not any(leftovers.values()), f"inv down --env {env} left {leftovers}"


@pytest.fixture(scope="session")
def compose_stack() -> Callable[[Run, str], contextlib.AbstractContextManager[None]]:
    return _compose_stack


@pytest.fixture(scope="session")
def report() -> dict[str, Any]:
    """What the run measured; printed at the end."""
    return REPORT
