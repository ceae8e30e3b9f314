"""Fixtures for the cross-service tests: paths and a way to run `inv` like a user does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def run_inv() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `inv ARGS...` in the repo with the test environment's interpreter."""
    uv_dir = str(Path(shutil.which("uv") or "/usr/bin/uv").parent)

    def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), uv_dir, os.environ["PATH"]]),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run
