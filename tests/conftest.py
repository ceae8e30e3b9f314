"""Fixtures for the cross-service tests: the repository, scratch checkouts of it, and running
`inv` in either the way a user does (a subprocess with the workspace's interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
Inv = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def copy_checkout(repo_root: Path, into: Path) -> Path:
    """The working tree as git sees it (tracked and new files, nothing ignored): a clean
    checkout, without the user's .env files, .data/, backups/ or .models/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = repo_root / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="session")
def make_checkout(repo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """`make_checkout(name)`: a fresh scratch checkout of the working tree."""

    def make(name: str = "checkout") -> Path:
        return copy_checkout(repo_root, tmp_path_factory.mktemp(name))

    return make


def inv_runner(cwd: Path, default_timeout: float = 120) -> Inv:
    """`run(*args, timeout=, **env)`: `inv ARGS...` in `cwd`, never waiting for a keyboard."""
    uv_dir = str(Path(shutil.which("uv") or "/usr/bin/uv").parent)

    def run(
        *args: str, timeout: float = default_timeout, **env: str
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), uv_dir, os.environ["PATH"]]),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def make_inv() -> Callable[..., Inv]:
    """`make_inv(cwd)`: an `inv` runner for a scratch checkout."""
    return inv_runner


@pytest.fixture
def run_inv() -> Inv:
    """Run `inv ARGS...` in the repository itself."""
    return inv_runner(ROOT)
