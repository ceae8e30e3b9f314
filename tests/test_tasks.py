"""The `inv` surface: every namespace listed, every option explained, failures explained."""

from __future__ import annotations

import re

import pytest

NAMESPACES = ("env", "db", "backup", "models")


@pytest.fixture(scope="module")
def collection(repo_root):
    from invoke.loader import FilesystemLoader

    module, _ = FilesystemLoader(start=str(repo_root)).load("tasks")
    return module.ns


def test_list_shows_every_namespace_and_root_task(run_inv):
    result = run_inv("--list")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\s{2}(\S+)", result.stdout, flags=re.MULTILINE))
    for name in ("setup", "doctor", "up", "down", "ps", "logs", "health"):
        assert name in listed
    for namespace in NAMESPACES:
        assert any(task.startswith(f"{namespace}.") for task in listed), namespace


def test_every_task_has_a_docstring_and_help_for_every_option(collection):
    for name in collection.task_names:
        task = collection[name]
        assert task.__doc__ and task.__doc__.strip(), f"{name} has no docstring"
        params = list(task.argspec(task.body).parameters)
        # invoke's help keys use the Python parameter name (`from_` for --from)
        missing = [p for p in params if p not in task.help and p.rstrip("_") not in task.help]
        assert not missing, f"inv {name}: no help text for {missing}"


def test_list_does_not_import_heavy_modules(repo_root):
    import subprocess
    import sys

    code = (
        "import sys, invoke.loader as l;"
        "l.FilesystemLoader(start='.').load('tasks');"
        "heavy = {'rich', 'pydantic', 'httpx', 'psycopg', 'redis', 'grpc', 'sqlalchemy'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"tasks.py imports {out} at start-up: move the import into the task body"


def test_unknown_env_is_refused_with_the_choices(run_inv):
    result = run_inv("doctor", "--env", "qa")
    assert result.returncode == 2
    assert "unknown environment 'qa'" in result.stderr
    assert "dev, staging, prod" in result.stderr
    assert "Traceback" not in result.stderr
