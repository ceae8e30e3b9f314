"""The installed git hook refuses commits that break lint, with no network beyond PyPI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env=env, check=check, timeout=600
    )


@pytest.fixture(scope="module")
def repo(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch repository carrying our hook config and ruff settings, hook installed."""
    repo = tmp_path_factory.mktemp("hooked")
    _git(repo, "init", "-q", "-b", "main")
    shutil.copy(repo_root / ".pre-commit-config.yaml", repo)
    shutil.copy(repo_root / "pyproject.toml", repo)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "--no-verify", "-m", "config")
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo, check=True)
    return repo


def _commits(repo: Path) -> int:
    return int(_git(repo, "rev-list", "--count", "HEAD").stdout)


@pytest.mark.parametrize(
    ("name", "content", "hook"),
    [
        ("unused.py", "import os\n\nVALUE = 1\n", "ruff check"),
        ("notes.txt", "a line with a trailing space \n", "trim trailing whitespace"),
        ("noeol.txt", "no newline at the end", "fix end of files"),
    ],
)
def test_a_commit_that_breaks_lint_is_refused(repo, name, content, hook):
    before = _commits(repo)
    (repo / name).write_text(content)
    _git(repo, "add", name)
    try:
        result = _git(repo, "commit", "-m", f"add {name}", check=False)
    finally:  # the hooks fix files in place; leave the repo clean for the next case
        _git(repo, "reset", "-q", "--hard")
        _git(repo, "clean", "-qfd")
    output = result.stdout + result.stderr  # the hook's report goes to stderr
    assert result.returncode != 0, output
    failed = [line for line in output.splitlines() if line.endswith("Failed")]
    assert any(line.startswith(hook) for line in failed), output
    assert _commits(repo) == before


def test_a_clean_commit_goes_through(repo):
    before = _commits(repo)
    (repo / "clean.py").write_text('"""A tidy module."""\n\nVALUE = 1\n')
    _git(repo, "add", "clean.py")
    result = _git(repo, "commit", "-m", "add clean module", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _commits(repo) == before + 1
