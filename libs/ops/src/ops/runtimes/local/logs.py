"""Printing and following log files, several at once, each line prefixed by its service."""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path

_BLOCK = 64 * 1024


def tail_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of a file, reading only its end."""
    if count <= 0 or not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        offset = max(0, size - _BLOCK)
        while True:
            fh.seek(offset)
            chunk = fh.read(size - offset)
            if chunk.count(b"\n") > count or offset == 0:
                break
            offset = max(0, offset - _BLOCK)
    text = chunk.decode("utf-8", errors="replace")
    return list(deque(text.splitlines(keepends=True), maxlen=count))


def show(paths: list[Path], *, tail: int, follow: bool, poll: float = 0.25) -> None:
    """Print the last `tail` lines of each file; with `follow`, keep printing until Ctrl-C."""
    width = max((len(p.stem) for p in paths), default=0)
    out = sys.stdout
    positions: dict[Path, int] = {}
    for path in paths:
        prefix = f"{path.stem:<{width}} | " if len(paths) > 1 else ""
        for line in tail_lines(path, tail):
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
        positions[path] = path.stat().st_size if path.exists() else 0
    out.flush()
    if not follow:
        return
    try:
        while True:
            for path in paths:
                if not path.exists():
                    continue
                size = path.stat().st_size
                if size < positions[path]:  # rotated or truncated: start over
                    positions[path] = 0
                if size == positions[path]:
                    continue
                with path.open("rb") as fh:
                    fh.seek(positions[path])
                    data = fh.read()
                positions[path] += len(data)
                prefix = f"{path.stem:<{width}} | " if len(paths) > 1 else ""
                for line in data.decode("utf-8", errors="replace").splitlines(keepends=True):
                    out.write(prefix + line)
            out.flush()
            time.sleep(poll)
    except KeyboardInterrupt:
        pass
