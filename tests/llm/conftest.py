"""The real-model session (`nox -s llm`): llama.cpp serving the GGUF models.lock pins.

Runs only when MI_LLM=1 (the nox session sets it, after `inv models.pull --env dev --kind
llm,embeddings` placed the verified models in .models/dev/); the default test run skips it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mi_testing import ServiceProcess, free_port, services, subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("MI_LLM"):
        return
    skip = pytest.mark.skip(reason="real-model tests run in `nox -s llm` (MI_LLM=1)")
    for item in items:
        if "tests/llm" in str(item.path):
            item.add_marker(skip)


def model_dir(kind: str) -> Path:
    path = Path(os.environ.get(f"MI_{kind.upper()}_MODEL_DIR", ROOT / ".models" / "dev" / kind))
    if not any(path.glob("*")):
        pytest.fail(
            f"no {kind} model in {path}: run `uv run inv models.pull --env dev --kind {kind}`"
        )
    return path


@pytest.fixture(scope="session")
def pulled_models() -> dict[str, Path]:
    """Where `inv models.pull --env dev --kind llm,embeddings` put the models."""
    return {kind: model_dir(kind) for kind in ("llm", "embeddings")}


@pytest.fixture(scope="session")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llm_service.llama` (llama.cpp's server) with the locked GGUF."""
    port = free_port()
    service = ServiceProcess(
        [sys.executable, "-m", "llm_service.llama"],
        subprocess_env(
            LLM_HOST="127.0.0.1",
            LLAMA_PORT=str(port),
            LLM_MODEL_DIR=str(model_dir("llm")),
            LOG_JSON="false",
        ),
        tmp_path_factory.mktemp("llama") / "llama.log",
    ).start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        service.wait_until(healthy, timeout=180, what="llama.cpp /health 200")
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def local_llm_url(tmp_path_factory: pytest.TempPathFactory, llama_url: str) -> Iterator[str]:
    """The llm service with LLM_ENGINE=local (no fallback: a model failure must fail here)."""
    with services.llm(
        tmp_path_factory.mktemp("llm-local"),
        LLM_ENGINE="local",
        LLAMA_URL=llama_url,
        LLM_MODEL_DIR=str(model_dir("llm")),
        EMBEDDINGS_MODEL_DIR=str(model_dir("embeddings")),
        LLM_FALLBACK="false",
        LLM_DEADLINE="280",
        OPENAI_TIMEOUT="240",
        OPENAI_RETRIES="1",
    ) as url:
        yield url
