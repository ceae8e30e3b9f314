"""Analysis quality per engine: action items (owner, due) and topics against what a careful
reader takes from twelve written meetings (llm_quality_set.py), with latency.

    uv run python benchmarks/llm_quality.py [--engines extractive,local] [--model-dir DIR]

- extractive: the rule-based engine, in-process.
- local: Qwen2.5-Coder-1.5B-Instruct (the GGUF models.lock pins; `uv run inv models.pull
  --env dev --kind llm`) served by `python -m llm_service.llama` (llama.cpp), which this
  script starts on a free port and stops; the llm service's OpenAI-compatible engine asks it.
- openai: any OpenAI-compatible server: --base-url and --model (OPENAI_API_KEY if needed).

Scoring: a predicted item matches an expected one with the same owner (case-insensitive)
and the same due (the expected phrase contained in the predicted one, or both absent); each
expected item is matched at most once. Precision = matched / predicted, recall = matched /
expected, over all twelve meetings. Topic recall: an expected keyword found in some topic.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _timing import ROOT, machine
from llm_quality_set import CASES

from llm_service.engines.extractive import analyze_text
from llm_service.engines.openai import OpenAIClient, OpenAIEngine
from llm_service.schemas import AnalyzeResponse
from mi_testing import free_port

REFERENCE_DATE = dt.date(2026, 3, 2)


def score(cases: list[dict[str, Any]], replies: list[AnalyzeResponse]) -> dict[str, float]:
    predicted = expected = matched = topics_found = topics_expected = 0
    for case, reply in zip(cases, replies, strict=True):
        wanted = [(o.lower(), (d or "").lower()) for o, d in case["items"]]
        predicted += len(reply.action_items)
        expected += len(wanted)
        for item in reply.action_items:
            owner, due = (item.owner or "").lower(), (item.due or "").lower()
            hit = next(
                (w for w in wanted if w[0] == owner and (w[1] in due if w[1] else not due)), None
            )
            if hit is not None:
                matched += 1
                wanted.remove(hit)
        said = " ".join(reply.topics).lower()
        topics_expected += len(case["topics"])
        topics_found += sum(1 for t in case["topics"] if t.lower() in said)
    return {
        "precision": matched / predicted if predicted else 0.0,
        "recall": matched / expected if expected else 0.0,
        "topic_recall": topics_found / topics_expected,
    }


def run_extractive() -> tuple[list[AnalyzeResponse], list[float]]:
    replies, seconds = [], []
    for case in CASES:
        start = time.perf_counter()
        replies.append(analyze_text(case["text"], REFERENCE_DATE))
        seconds.append(time.perf_counter() - start)
    return replies, seconds


async def run_chat(
    base_url: str, model: str, api_key: str, name: str
) -> tuple[list[AnalyzeResponse], list[float]]:
    async with httpx.AsyncClient() as http:
        client = OpenAIClient(base_url, api_key=api_key, timeout=600, retries=1, http=http)
        engine = OpenAIEngine(client, model, 8000, name=name, check_model=name != "local")
        replies, seconds = [], []
        for case in CASES:
            start = time.perf_counter()
            replies.append(await engine.analyze(case["text"], reference_date=REFERENCE_DATE))
            seconds.append(time.perf_counter() - start)
            print(f"  {name} {case['name']}: {seconds[-1]:.1f}s", flush=True)
        return replies, seconds


def start_llama(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LLM_MODEL_DIR": str(model_dir), "LLAMA_PORT": str(port),
           "LLM_HOST": "127.0.0.1", "LOG_JSON": "false"}  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "llm_service.llama"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"llama.cpp exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("llama.cpp did not become healthy in 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="extractive,local")
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".models" / "dev" / "llm")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", ""))
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL", ""))
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{len(CASES)} meetings, {sum(len(c['items']) for c in CASES)} action items expected")
    rows = []
    for engine in args.engines.split(","):
        if engine == "extractive":
            replies, seconds = run_extractive()
        elif engine == "local":
            with tempfile.TemporaryDirectory() as scratch:
                process, url = start_llama(args.model_dir, Path(scratch) / "llama.log")
                try:
                    replies, seconds = asyncio.run(run_chat(f"{url}/v1", "local", "", "local"))
                finally:
                    process.terminate()
                    process.wait(30)
        elif engine == "openai":
            key = os.environ.get("OPENAI_API_KEY", "")
            replies, seconds = asyncio.run(run_chat(args.base_url, args.model, key, "openai"))
        else:
            raise SystemExit(f"unknown engine {engine!r}: extractive, local or openai")
        result = score(CASES, replies)
        rows.append((engine, result, statistics.median(seconds), max(seconds)))
    print(
        f"\n{'engine':<12}{'precision':>10}{'recall':>8}{'topics':>8}{'median s':>10}{'max s':>8}"
    )
    for engine, result, med, worst in rows:
        print(f"{engine:<12}{result['precision']:>10.2f}{result['recall']:>8.2f}"
              f"{result['topic_recall']:>8.2f}{med:>10.2f}{worst:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
