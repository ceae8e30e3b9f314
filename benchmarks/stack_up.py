"""How long `inv up --env dev` takes to reach all-healthy, and `inv health` on a healthy stack.

    uv run python benchmarks/stack_up.py [--runs 3] [--env dev]

cold: a checkout with no .data/ (initdb, migrations, first start of every service).
warm: `inv down` then `inv up` again (data exists). Runs in a scratch copy of the working
tree on the env's ports, so stop your own stack of that env first.
Targets (issue 5, 2-core machine): warm under 10 s, cold under 20 s, health under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import copy_checkout, machine, median


def inv(cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "inv"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", default="dev")
    args = parser.parse_args()
    env = ["--env", args.env]

    cold, warm, health = [], [], []
    with tempfile.TemporaryDirectory(prefix="mi-bench-") as tmp:
        checkout = Path(tmp)
        copy_checkout(checkout)
        if args.env != "dev":
            inv(checkout, "env.setup", *env)
        try:
            for _ in range(args.runs):
                shutil.rmtree(checkout / ".data", ignore_errors=True)
                cold.append(inv(checkout, "up", *env, "--runtime", "local"))
                health += [inv(checkout, "health", *env) for _ in range(5)]
                inv(checkout, "down", *env)
                warm.append(inv(checkout, "up", *env, "--runtime", "local"))
                inv(checkout, "down", *env)
        finally:
            subprocess.run(
                [str(Path(sys.executable).parent / "inv"), "down", *env],
                cwd=checkout,
                capture_output=True,
                check=False,
            )

    print(f"machine: {machine()}; median of {args.runs} runs ({len(health)} for health)")
    print(
        f"  inv up, cold (initdb + migrations)   {median(cold):6.2f} s   runs: "
        + " ".join(f"{s:.2f}" for s in cold)
    )
    print(
        f"  inv up, warm (data exists)           {median(warm):6.2f} s   runs: "
        + " ".join(f"{s:.2f}" for s in warm)
    )
    print(f"  inv health, healthy stack            {median(health):6.2f} s")


if __name__ == "__main__":
    main()
