"""LLM_ENGINE=local in the local runtime: llama.cpp as one more supervised program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops import health
from ops.env import schema
from ops.environment import Environment
from ops.runtimes import local


def values_for(engine: str) -> dict[str, str]:
    env = Environment.parse("dev")
    values = schema.defaults_for(env)
    values.update(
        LLM_ENGINE=engine,
        LLAMA_URL=f"http://127.0.0.1:{values['LLAMA_PORT']}",
        LLM_URL=f"http://127.0.0.1:{values['LLM_PORT']}",
        DATABASE_URL="postgresql://mi:pw@127.0.0.1:5433/meetings",
        REDIS_URL="redis://:pw@127.0.0.1:6380/0",
        WHISPER_URL="127.0.0.1:50051",
        REDIS_PASSWORD="pw",
    )
    return values


def test_the_llama_program_runs_only_for_the_local_engine(scratch_root: Path) -> None:
    env = Environment.parse("dev")
    local_programs = {p.name: p for p in local.programs(env, values_for("local"))}
    assert list(local_programs["llama"].command[1:]) == ["-m", "llm_service.llama"]
    # Stopped before the stores, with the other AI services; after the apps that call it.
    assert local_programs["llama"].priority == local_programs["llm"].priority - 50
    assert "llama" not in {p.name for p in local.programs(env, values_for("extractive"))}
    assert "LLAMA_PORT" in local.ports(values_for("local"), with_ollama=False)
    assert "LLAMA_PORT" not in local.ports(values_for("auto"), with_ollama=False)


def test_health_checks_llama_when_the_env_runs_it() -> None:
    names = [c.name for c in health.checks_for(values_for("local"))]
    assert "llama" in names
    assert "llama" not in [c.name for c in health.checks_for(values_for("auto"))]


def test_llama_without_its_model_exits_2_saying_how_to_pull_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llm_service.llama"],
        env={"LLM_MODEL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "LOG_JSON": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"no .gguf file in LLM_MODEL_DIR={tmp_path}" in result.stderr
    assert "inv models.pull" in result.stderr
