"""Each service's own settings class accepts exactly the environment compose gives it.

Compose passes every app service an explicit `environment:` (no env_file), so a required key
missing there, or a value the service would reject, only shows when the container starts. This
builds each settings class in a fresh process from the merged config's environment alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SETTINGS = {
    "migrate": None,  # only DATABASE_URL, checked below
    "backend": "backend.config:BackendSettings",
    "worker": "worker.config:WorkerSettings",
    "whisper": "whisper_service.config:WhisperSettings",
    "whisper-cuda": "whisper_service.config:WhisperSettings",
    "llm": "llm_service.config:LLMSettings",
}

BUILD = """
import importlib, json, os, sys
module, _, name = sys.argv[1].partition(":")
cls = getattr(importlib.import_module(module), name)
settings = cls()
print(json.dumps(settings.model_dump(mode="json"), default=str))
"""


@pytest.mark.usefixtures("validators")
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_app_service_starts_from_its_compose_environment(infra_check, tmp_path, env):
    values = infra_check.throwaway_env(env)
    config = infra_check.merged_config(ROOT, env, infra_check.write_env_file(env, values, tmp_path))
    assert config["services"]["migrate"]["environment"]["DATABASE_URL"].startswith(
        "postgresql+psycopg://"
    )
    for service, target in SETTINGS.items():
        if target is None:
            continue
        environment = {k: str(v) for k, v in config["services"][service]["environment"].items()}
        proc = subprocess.run(
            [sys.executable, "-c", BUILD, target],
            env={**environment, "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"{env}/{service}: {proc.stderr.strip().splitlines()[-1:]}"
        settings = json.loads(proc.stdout)
        assert settings["app_env"] == env
        if service in {"backend", "worker"}:
            assert settings["whisper_url"] == "whisper-cpu:50051"
            assert settings["llm_url"] == "http://llm:8001"
            assert str(settings["media_dir"]) == "/data/media"
        if service.startswith("whisper"):
            assert settings["host"] == "0.0.0.0"  # noqa: S104 - listening inside the container
            assert settings["device"] == ("cuda" if service == "whisper-cuda" else "cpu")
        if service == "llm":
            assert settings["ollama_url"].rstrip("/") == "http://ollama:11434"
