"""Fixtures for the ops tests: a scratch repository root and free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import project


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make ops treat an empty temp directory as the repository root."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setattr(project, "root", lambda: root)
    yield root
