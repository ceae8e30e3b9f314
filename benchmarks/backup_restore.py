"""Backup and restore of a realistic dev stack: time, throughput and RTO (restore to healthy).

    uv run python benchmarks/backup_restore.py [--runs 3] [--meetings 10000] [--media-mb 1024]

A scratch copy of the working tree gets free ports and `inv up --env dev --runtime local`;
its database is seeded with finished meetings (transcripts, segments, summaries, action items,
search documents: benchmarks/api_seed.py, by COPY) and its media directory with one random
(incompressible, like audio) file per meeting, 1 GiB in total. Then, per run:

- `inv backup --env dev`: dump + media + manifest, fsynced, then read back and verified;
- `inv backup.restore --env dev --from <archive> --yes`: verify while unpacking, restore into
  a scratch database, swap it in, restart backend and worker, health-check. That command's
  wall time is the RTO (the stack serves again when it returns).

`inv backup.verify --drill` is timed once, and gzip -1 is measured on the same data to show
why the archive is an uncompressed tar. Target (issue 7, 2-core machine): RTO under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from _timing import copy_checkout, machine, median
from api_seed import seed

from mi_testing import free_port

MIB = 1024 * 1024


def inv(cwd: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def env_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def on_free_ports(env_file: Path) -> dict[str, str]:
    """Move every *_PORT of `env_file` to a free port (a developer's own dev stack keeps its
    ports); the file's values after."""
    env_file.write_text(
        "\n".join(
            f"{line.split('=', 1)[0]}={free_port()}"
            if line.split("=", 1)[0].endswith("_PORT")
            else line
            for line in env_file.read_text().splitlines()
        )
        + "\n"
    )
    return env_values(env_file)


def superuser_url(values: dict[str, str]) -> str:
    """The cluster superuser's libpq URL: seeding vacuums and checkpoints."""
    return (
        f"postgresql://{values['POSTGRES_USER']}:{values['POSTGRES_PASSWORD']}@"
        f"{values['POSTGRES_HOST']}:{values['POSTGRES_PORT']}/{values['POSTGRES_DB']}"
    )


def write_media(media: Path, names: list[str], total_bytes: int) -> float:
    """One random file per meeting; returns seconds. Random bytes are what audio looks like
    to a compressor."""
    media.mkdir(parents=True, exist_ok=True)
    each = total_bytes // len(names)
    block = os.urandom(each + 4096)
    start = time.perf_counter()
    for number, name in enumerate(names):
        offset = number % 4096  # every file different, without generating 1 GiB of randomness
        (media / name).write_bytes(number.to_bytes(8, "big") + block[offset : offset + each - 8])
    return time.perf_counter() - start


def gzip1(data: bytes) -> tuple[float, float]:
    """(MB/s, compressed/original) of zlib level 1 on `data`."""
    start = time.perf_counter()
    size = len(zlib.compress(data, 1))
    return len(data) / MIB / (time.perf_counter() - start), size / len(data)


def phase(output: str, pattern: str) -> str:
    found = re.search(pattern, output)
    return found.group(1) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--media-mb", type=int, default=1024)
    args = parser.parse_args()
    env = ["--env", "dev"]
    print(f"machine: {machine()}")

    with tempfile.TemporaryDirectory(prefix="mi-bench-backup-") as tmp:
        checkout = Path(tmp)
        copy_checkout(checkout)
        inv(checkout, "env.setup", *env)
        env_file = checkout / ".env.dev"
        values = on_free_ports(env_file)
        url = superuser_url(values)
        try:
            seconds, _ = inv(checkout, "up", *env, "--runtime", "local", "--timeout", "240")
            print(f"stack up in {seconds:.1f}s")
            start = time.perf_counter()
            seeded = seed(url, args.meetings)
            print(f"seeded {args.meetings} meetings in {time.perf_counter() - start:.1f}s")
            media = checkout / ".data" / "dev" / "media"
            names = [f"{meeting_id.hex}.wav" for meeting_id in seeded.ids]
            seconds = write_media(media, names, args.media_mb * MIB)
            print(f"wrote {args.media_mb} MiB of media in {len(names)} files in {seconds:.1f}s")

            backups, restores, archives, downtimes = [], [], [], []
            path = Path()
            for run in range(1, args.runs + 1):
                seconds, out = inv(checkout, "backup", *env, "--keep", "1")
                path = Path(out.split("backup: ", 1)[1].split(" (", 1)[0])
                size = path.stat().st_size
                backups.append(seconds)
                archives.append(size)
                gathered = phase(out, r"file\(s\) in ([\d.]+s)")
                written = phase(out, r"wrote \S+ \([^)]*\) in ([\d.]+s)")
                verified = phase(out, r"intact \(checksums, ([\d.]+s)")
                print(
                    f"run {run}: backup {seconds:.1f}s ({size / MIB / seconds:.0f} MiB/s, "
                    f"archive {size / MIB:.0f} MiB; dump + media links at {gathered}, "
                    f"archive written at {written}, read back and verified in {verified})"
                )
                seconds, out = inv(checkout, "backup.restore", *env, "--from", str(path), "--yes")
                restores.append(seconds)
                unpacked = phase(out, r"unpacked \S+ in ([\d.]+s)")
                checked = phase(out, r"checked it \(([\d.]+s)\)")
                stop = phase(out, r"stopped [\w, ]+ \(([\d.]+s)\)")
                back = phase(out, r"healthy \(([\d.]+s)\)")
                if "?" not in (stop, back):
                    downtimes.append(float(stop[:-1]) + float(back[:-1]))
                print(
                    f"run {run}: restore to healthy (RTO) {seconds:.1f}s "
                    f"({size / MIB / seconds:.0f} MiB/s; archive verified + unpacked at "
                    f"{unpacked}, database restored + checked at {checked} while the old "
                    f"data still served; then stopping backend + worker took {stop}, swap, "
                    f"restart and health {back})"
                )
            drill, _ = inv(checkout, "backup.verify", str(path), "--drill")
            print(f"verify --drill: {drill:.1f}s")
            rate, ratio = gzip1(os.urandom(64 * MIB))
            print(f"gzip -1 on random (audio-like) media: {rate:.0f} MiB/s, size x{ratio:.4f}")
        finally:
            subprocess.run(
                [sys.executable, "-m", "invoke", "down", *env],
                cwd=checkout,
                capture_output=True,
                check=False,
            )

    result = {
        "meetings": args.meetings,
        "media_mib": args.media_mb,
        "archive_mib": round(median(archives) / MIB),
        "backup_s": [round(s, 1) for s in backups],
        "restore_rto_s": [round(s, 1) for s in restores],
        "backup_median_s": round(median(backups), 1),
        "restore_rto_median_s": round(median(restores), 1),
        "apps_down_median_s": round(median(downtimes), 1) if downtimes else None,
        "drill_s": round(drill, 1),
    }
    print(json.dumps(result))
    target = "met" if result["restore_rto_median_s"] < 60 else "MISSED"
    print(f"RTO median {result['restore_rto_median_s']}s: target < 60 s {target}")


if __name__ == "__main__":
    main()
