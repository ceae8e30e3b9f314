"""Each process of the local runtime gets only the secrets it uses: the programs `inv up`
configures, under a real supervisord started with the environment `inv up` gives it, with
each program's command replaced by a sleeper whose /proc/<pid>/environ is read."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ops import env as env_files
from ops.env import schema
from ops.environment import Environment
from ops.runtimes import local
from ops.runtimes.local.supervisor import Layout, Supervisor, render_config

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _execed(pid: int) -> bool:
    return b"time.sleep(600)" in Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.fixture
def running(scratch_root: Path, monkeypatch: pytest.MonkeyPatch):
    env = Environment.parse("dev")
    env_files.setup(env)
    values = env.values()
    # A secret exported in the shell that runs `inv up` must not leak either.
    monkeypatch.setenv("POSTGRES_PASSWORD", values["POSTGRES_PASSWORD"])
    apps = [p for p in local.programs(env, values) if p.name in local.APPS]
    sleepers = [replace(p, command=SLEEP, startsecs=0) for p in apps]
    layout = Layout(env.data_dir)
    layout.logs.mkdir(parents=True)
    layout.conf.write_text(render_config(layout, "mi-secrets-test", sleepers))
    sup = Supervisor(layout)
    sup.start(local.process_env(env, values))
    try:
        for program in sleepers:
            sup.start_program(program.name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = {i["name"]: i["pid"] for i in sup.info() if i["statename"] == "RUNNING"}
            # Until execve, /proc/<pid>/environ is still supervisord's own.
            if len(pids) == len(sleepers) and all(_execed(pid) for pid in pids.values()):
                break
            time.sleep(0.1)
        yield values, {name: _environ(pid) for name, pid in pids.items()}
    finally:
        sup.shutdown()


def test_each_service_process_gets_only_its_own_secrets(running) -> None:
    values, environs = running
    assert set(environs) == set(local.APPS)
    secrets = schema.credential_keys()
    for service, environ in environs.items():
        held = {key for key in secrets if key in environ}
        assert held == set(local.SECRETS_OF[service]) & {k for k in secrets if values.get(k)}, (
            service
        )
        for key in held:
            assert environ[key] == values[key], (service, key)
    assert "API_TOKEN" not in environs["whisper"] and "DATABASE_URL" not in environs["llm"]
    assert "OPENAI_API_KEY" not in environs["backend"]
    # Nobody gets the superuser's or the owner's credentials.
    for environ in environs.values():
        for key in ("POSTGRES_PASSWORD", "POSTGRES_OWNER_PASSWORD", "DATABASE_OWNER_URL"):
            assert key not in environ
        assert values["POSTGRES_PASSWORD"] not in "".join(environ.values())
    # Settings that are no secret still reach everyone.
    assert all(e["LLM_URL"] == values["LLM_URL"] for e in environs.values())


def test_secrets_travel_in_the_supervisor_config_not_in_its_environment(
    scratch_root: Path,
) -> None:
    env = Environment.parse("dev")
    env_files.setup(env)
    values = env.values()
    text = render_config(Layout(env.data_dir), "x", local.programs(env, values))
    # Hence `inv up` writes it with mode 0600 (tests/e2e checks the file it wrote).
    assert values["SERVICE_TOKEN"] in text and values["API_TOKEN"] in text
    inherited = local.process_env(env, values)
    assert not schema.credential_keys() & set(inherited)
