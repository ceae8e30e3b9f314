"""Fixtures for the infra tests: the checker module and throwaway copies of the repo's files."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def infra_check() -> ModuleType:
    """scripts/infra_check.py, imported the way `nox -s infra` runs it (scripts/ is no package)."""
    name = "infra_check"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "infra_check.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while being created
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def validators(infra_check: ModuleType) -> None:
    """The tools the checks run; the `validate` dependency group (and `nox -s infra`) has them."""
    for name in ("check-jsonschema", "hadolint", "docker-compose"):
        try:
            infra_check.tool(name)
        except FileNotFoundError as exc:
            pytest.skip(f"{exc}; `uv run nox -s infra` installs and runs them")


@pytest.fixture
def repo_copy(tmp_path: Path, validators: None) -> Path:
    """The files the checks read (compose, configs, Dockerfiles, manifests) in a temp root."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", ".dockerignore", ".hadolint.yaml"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "infra", root / "infra")
    for pattern in (
        "services/*/pyproject.toml",
        "services/*/Dockerfile",
        "libs/*/pyproject.toml",
        "libs/*/Dockerfile",
    ):
        for path in ROOT.glob(pattern):
            target = root / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return root


@pytest.fixture
def mutate() -> Callable[[Path, str, str, str], None]:
    """Replace one exact snippet in a copied file; fails loudly if the snippet is gone."""

    def apply(root: Path, relpath: str, old: str, new: str) -> None:
        path = root / relpath
        text = path.read_text()
        assert old in text, f"{relpath} no longer contains {old!r}: update the test"
        path.write_text(text.replace(old, new, 1))

    return apply
