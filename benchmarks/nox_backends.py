"""`nox -s tests lint` on the uv backend against nox's default virtualenv backend (pip).

    uv run python benchmarks/nox_backends.py [--runs 3] [--full]

cold: a fresh --envdir (new virtualenvs; package caches warm, as after `rm -rf .nox`).
warm: the same envdir again (reused virtualenvs: installs should be no-ops).
By default sessions run with --install-only, which isolates what the backend changes;
--full also runs the tests, so the ratio shrinks by the (backend-independent) test time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import ROOT, machine, median, time_command

BACKENDS = ("uv", "virtualenv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="run the sessions, not only installs")
    args = parser.parse_args()

    nox = str(Path(sys.prefix, "bin", "nox"))
    results: dict[tuple[str, str], float] = {}
    for backend in BACKENDS:
        cold, warm = [], []
        for _ in range(args.runs):
            envdir = tempfile.mkdtemp(prefix=f"nox-{backend}-")
            argv = [nox, "-s", "tests", "lint", "--envdir", envdir]
            argv += ["--force-venv-backend", backend]
            if not args.full:
                argv.append("--install-only")
            cold += time_command(argv, 1, cwd=ROOT)
            warm += time_command(argv, 1, cwd=ROOT)
            shutil.rmtree(envdir)
        results[backend, "cold"] = median(cold)
        results[backend, "warm"] = median(warm)

    what = "full sessions" if args.full else "--install-only"
    print(f"machine: {machine()}; nox -s tests lint ({what}), median of {args.runs} runs")
    print(f"  {'':<6} {'uv':>9} {'virtualenv':>11} {'ratio':>7}")
    for phase in ("cold", "warm"):
        uv, venv = results["uv", phase], results["virtualenv", phase]
        print(f"  {phase:<6} {uv:>8.2f}s {venv:>10.2f}s {venv / uv:>6.1f}x")


if __name__ == "__main__":
    main()
