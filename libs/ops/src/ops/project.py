"""Where the repository is and what its root pyproject.toml declares."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from ops.errors import OpsError


@cache
def root() -> Path:
    """The repository root: the nearest parent holding both tasks.py and pyproject.toml."""
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "tasks.py").is_file() and (candidate / "pyproject.toml").is_file():
            return candidate
    raise OpsError(
        f"no repository root above {here} (looked for tasks.py next to pyproject.toml)",
        "run the command from inside the repository checkout",
    )


@cache
def pyproject() -> dict[str, Any]:
    with (root() / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)
