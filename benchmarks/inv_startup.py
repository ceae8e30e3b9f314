"""How long `inv --list` takes to start, against invoke on its own.

    uv run python benchmarks/inv_startup.py [--runs 15]

Target (issue 2): `uv run inv --list` median under 0.4 s. "invoke alone" is `inv --list`
on a tasks.py with a single empty task, so the difference is what our tasks.py costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import ROOT, machine, median, time_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    inv = str(Path(sys.prefix, "bin", "inv"))
    uv = shutil.which("uv") or "uv"
    env = {**os.environ}
    with tempfile.TemporaryDirectory() as empty:
        Path(empty, "tasks.py").write_text(
            "from invoke import task\n\n@task\ndef noop(c):\n    pass\n"
        )
        cases = {
            "invoke alone (inv --list, 1 empty task)": ([inv, "--list"], Path(empty)),
            "inv --list (this repo)": ([inv, "--list"], ROOT),
            "uv run inv --list (this repo)": ([uv, "run", "--frozen", "inv", "--list"], ROOT),
        }
        time_command([inv, "--list"], 2, cwd=ROOT, env=env)  # warm the page cache
        print(f"machine: {machine()}; median of {args.runs} runs")
        for label, (argv, cwd) in cases.items():
            samples = time_command(argv, args.runs, cwd=cwd, env=env)
            print(f"  {label:<42} {median(samples):.3f} s  (min {min(samples):.3f})")


if __name__ == "__main__":
    main()
