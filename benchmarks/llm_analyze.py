"""Latency of the extractive analysis of a 10-minute meeting (~1500 words).

    uv run python benchmarks/llm_analyze.py [--runs 25] [--words 1500]

Target (llm issue): median under 0.5 s, both for the engine called in-process and for
`POST /v1/analyze` over HTTP against `python -m llm_service` on loopback. The transcript is
generated deterministically (fixed seed) from meeting-like sentences with speakers, owners
and deadlines, so every run and every machine analyzes the same text.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from _timing import machine, median

from llm_service.engines.extractive import analyze_text

TARGET_SECONDS = 0.5
SPEAKERS = ["Alice", "Bob", "Carol", "Dan", "Erin", "Farid"]
SUBJECTS = [
    "the mobile release",
    "the onboarding flow",
    "the pricing page",
    "the data pipeline",
    "the customer survey",
    "the support backlog",
    "the hiring plan",
    "the security audit",
]
DEADLINES = [
    "by Friday",
    "before next Monday",
    "by the end of the week",
    "tomorrow",
    "by March 3rd",
    "next Tuesday",
    "by the end of the month",
]
STATEMENTS = [
    "I looked at {s} again yesterday and the numbers are better than last sprint.",
    "The main risk with {s} is that we depend on another team for the API changes.",
    "Customers keep asking about {s}, it came up in four calls this week.",
    "We spent most of the budget for {s} on contractors, so we need to be careful now.",
    "I think {s} is in good shape, but the documentation is still behind.",
    "Our metrics for {s} dropped a little after the last deploy, which we should watch.",
    "The design review for {s} went well and nobody asked for big changes.",
    "Honestly {s} took longer than planned because of the database migration.",
    "Support says {s} generates fewer tickets since we changed the error messages.",
    "If we move {s} to next quarter we free two engineers for the security audit.",
    "Okay, that makes sense.",
    "Right, good point.",
    "Let me check my notes on that.",
]
COMMITMENTS = [
    "{o} will send the summary of {s} {d}.",
    "{o}, please review the open questions on {s} {d}.",
    "Action item: {o} to update the plan for {s} {d}.",
    "We need to finish the test plan for {s} {d}.",
    "{o} is going to talk to the vendor about {s} {d}.",
    "Can you share the latest numbers on {s}, {o}?",
]


def meeting_transcript(words: int, seed: int = 7) -> str:
    """A speaker-labelled transcript of about `words` words; same seed, same text."""
    rng = random.Random(seed)
    lines: list[str] = []
    count = 0
    while count < words:
        speaker = rng.choice(SPEAKERS)
        sentences = []
        for _ in range(rng.randint(1, 3)):
            subject = rng.choice(SUBJECTS)
            if rng.random() < 0.2:
                owner = rng.choice([p for p in SPEAKERS if p != speaker])
                template = rng.choice(COMMITMENTS)
                sentence = template.format(o=owner, s=subject, d=rng.choice(DEADLINES))
            else:
                sentence = rng.choice(STATEMENTS).format(s=subject)
            sentences.append(sentence[0].upper() + sentence[1:])
        line = f"{speaker}: {' '.join(sentences)}"
        lines.append(line)
        count += len(line.split()) - 1
    return "\n".join(lines)


def time_runs(call: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LLM_HOST": "127.0.0.1",
        "LLM_PORT": str(port),
        "LLM_ENGINE": "extractive",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_service"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"llm service exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("llm service did not become healthy within 30 s")


def report(label: str, samples: list[float]) -> bool:
    mid = median(samples)
    verdict = "ok" if mid < TARGET_SECONDS else "OVER TARGET"
    print(
        f"  {label:<34} median {mid * 1000:7.1f} ms   min {min(samples) * 1000:7.1f} ms"
        f"   max {max(samples) * 1000:7.1f} ms   [{verdict}]"
    )
    return mid < TARGET_SECONDS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--words", type=int, default=1500)
    args = parser.parse_args()
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a stable median")

    text = meeting_transcript(args.words)
    result = analyze_text(text)
    print(f"machine: {machine()}")
    print(
        f"transcript: {len(text.split())} words, {len(text)} characters, "
        f"{len(text.splitlines())} turns -> {len(result.action_items)} action items, "
        f"topics {result.topics}"
    )
    print(f"runs: {args.runs} (after 3 warm-up runs), target: median < {TARGET_SECONDS} s")

    ok = report("engine, in-process", time_runs(lambda: analyze_text(text), args.runs))

    port = free_port()
    service = start_service(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def post() -> None:
                client.post("/v1/analyze", json={"text": text}).raise_for_status()

            ok &= report("POST /v1/analyze over HTTP", time_runs(post, args.runs))
    finally:
        service.terminate()
        service.wait(timeout=30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
