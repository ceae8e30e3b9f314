"""`inv setup`: make a fresh clone ready to work in."""

from __future__ import annotations

import shutil
import sys

from invoke import Context

from ops import console, project
from ops.errors import OpsError


def setup(c: Context, *, hooks: bool) -> None:
    uv = shutil.which("uv")
    if uv is None:
        raise OpsError("uv is not on PATH", "`pip install uv`, then run `uv run inv setup`")
    with c.cd(str(project.root())):
        result = c.run(f"{uv} sync --locked", warn=True, pty=False)
        if result is None or result.failed:
            raise OpsError(
                "`uv sync --locked` failed (see above)",
                "if uv.lock is out of date, run `uv lock` and commit the result",
            )
        if hooks:
            if not (project.root() / ".git").exists():
                raise OpsError("not a git checkout: no hook to install", "run `git init` first")
            # The interpreter running inv is the workspace's: the hook will use it too.
            c.run(f"{sys.executable} -m pre_commit install --install-hooks", pty=False)
    console.say("ready: `uv run inv up --env dev` starts the stack, `uv run nox` runs the checks")
