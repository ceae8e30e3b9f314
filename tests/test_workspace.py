"""The workspace's promises: members, sources, one config, pinned tools in step with the lock."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

MEMBERS = {
    "libs/common": "common",
    "libs/meetings": "meetings",
    "libs/ops": "ops",
    "libs/recordings": "recordings",
    "libs/testing": "mi_testing",
    "services/backend": "backend",
    "services/worker": "worker",
    "services/whisper": "whisper_service",
    "services/llm": "llm_service",
}
# Import names taken by PyPI packages that this stack installs or that users commonly add.
TAKEN_IMPORT_NAMES = {"whisper", "llm", "celery", "alembic", "app", "api", "src", "tests"}


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def test_root_is_a_virtual_workspace_over_services_and_libs(repo_root):
    root = _toml(repo_root / "pyproject.toml")
    assert root["tool"]["uv"]["package"] is False
    assert root["tool"]["uv"]["workspace"]["members"] == ["services/*", "libs/*"]
    assert root["project"]["requires-python"]
    assert root["tool"]["uv"]["required-version"]
    found = {str(p.parent.relative_to(repo_root)) for p in repo_root.glob("*/*/pyproject.toml")}
    assert found == set(MEMBERS)


@pytest.mark.parametrize(("member", "module"), sorted(MEMBERS.items()))
def test_member_is_a_real_src_layout_package_with_tests(repo_root, member, module):
    base = repo_root / member
    meta = _toml(base / "pyproject.toml")
    assert meta["tool"]["uv"]["build-backend"]["module-name"] == module
    assert (base / "src" / module / "__init__.py").is_file()
    assert module not in TAKEN_IMPORT_NAMES
    test_files = list((base / "tests").glob("test_*.py"))
    assert test_files, f"{member} has no tests"
    assert any("def test_" in f.read_text() for f in test_files)
    assert not (base / "ruff.toml").exists() and "ruff" not in meta.get("tool", {}), (
        "one ruff config for the whole tree lives in the root pyproject.toml"
    )


def test_workspace_dependencies_use_workspace_sources(repo_root):
    names = {_toml(repo_root / m / "pyproject.toml")["project"]["name"] for m in MEMBERS}
    for pyproject in [
        repo_root / "pyproject.toml",
        *(repo_root / m / "pyproject.toml" for m in MEMBERS),
    ]:
        meta = _toml(pyproject)
        deps = {re.split(r"[\[<>=~! ]", d, maxsplit=1)[0] for d in meta["project"]["dependencies"]}
        sources = meta.get("tool", {}).get("uv", {}).get("sources", {})
        for dep in deps & names:
            assert sources.get(dep) == {"workspace": True}, (
                f"{pyproject}: {dep} needs a workspace source"
            )


def _imported_members(src: Path) -> set[str]:
    """The workspace members (by import name) that the modules under `src` import."""
    modules = set(MEMBERS.values())
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {name.split(".")[0] for name in names} & modules
    return found


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_members_declare_the_members_they_import_and_libs_import_no_service(repo_root, member):
    """Dependencies point one way: services use libs, libs never import a service."""
    meta = _toml(repo_root / member / "pyproject.toml")["project"]
    by_module = {
        module: _toml(repo_root / m / "pyproject.toml")["project"]["name"]
        for m, module in MEMBERS.items()
    }
    declared = [
        *meta["dependencies"],
        *(dep for extra in meta.get("optional-dependencies", {}).values() for dep in extra),
    ]
    declared_names = {re.split(r"[\[<>=~! ]", d, maxsplit=1)[0] for d in declared}
    imported = _imported_members(repo_root / member / "src") - {MEMBERS[member]}
    undeclared = {by_module[module] for module in imported} - declared_names
    assert not undeclared, f"{member} imports {sorted(undeclared)} without declaring them"
    if member.startswith("libs/"):
        services = {module for m, module in MEMBERS.items() if m.startswith("services/")}
        assert not imported & services, f"{member} imports services {sorted(imported & services)}"


def test_precommit_hooks_are_local_and_pinned_like_the_lock(repo_root):
    config = yaml.safe_load((repo_root / ".pre-commit-config.yaml").read_text())
    locked = {
        p["name"]: p["version"] for p in _toml(repo_root / "uv.lock")["package"] if "version" in p
    }
    assert all(repo["repo"] == "local" for repo in config["repos"]), "no hook may need GitHub"
    pins = [
        dep
        for repo in config["repos"]
        for hook in repo["hooks"]
        for dep in hook.get("additional_dependencies", [])
    ]
    assert pins
    for pin in pins:
        name, _, version = pin.partition("==")
        assert version, f"{pin} must be pinned with =="
        assert locked.get(name) == version, f"{pin} differs from uv.lock ({locked.get(name)})"


def test_gitignore_keeps_secrets_and_state_out(repo_root):
    import subprocess

    probe = [".env.dev", ".env.prod", ".data/dev/x", "backups/dev/a.tar", ".models/w/model.bin"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *probe, ".env.example"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert set(ignored) == set(probe)
