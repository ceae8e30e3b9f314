"""All terminal output of the ops layer: lines for humans, tables with a status column, JSON
for scripts, and the confirmation prompt. No other ops module prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

STATUS_STYLE = {
    "ok": "green",
    "running": "green",
    "healthy": "green",
    "warn": "yellow",
    "starting": "yellow",
    "backoff": "yellow",
    "fail": "bold red",
    "fatal": "bold red",
    "exited": "red",
    "unhealthy": "bold red",
    "stopped": "dim",
    "verified": "green",
    "drilled": "green",
    "present": "green",
    "missing": "bold red",
    "stale": "yellow",
    "unverified": "yellow",
    "failed": "bold red",
    "unreadable": "bold red",
}


def say(text: str) -> None:
    """A line of progress or of a result, for a human, on stdout."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A line for a human on stderr, when stdout carries data (`inv k8s.render | kubectl`)."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


def emit(text: str) -> None:
    """Data for another program, on stdout as is."""
    sys.stdout.write(text)
    sys.stdout.flush()


def size(num: float) -> str:
    """Bytes for a human: 512 B, 3.4 MiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(num) < 1024 or unit == "GiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} TiB"  # pragma: no cover


def elapsed(since: float) -> str:
    """Seconds since the `time.monotonic()` reading `since`, for a human: 2.3s."""
    import time

    return f"{time.monotonic() - since:.1f}s"


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _colour(text: str, style: str) -> str:
    codes = {"green": "32", "yellow": "33", "red": "31", "bold red": "1;31", "dim": "2"}
    return f"\033[{codes[style]}m{text}\033[0m" if style in codes else text


def _fit(widths: list[int], available: int, floor: int = 8) -> list[int]:
    """Shrink the widest columns until the table fits the terminal."""
    widths = list(widths)
    while sum(widths) > available and max(widths) > floor:
        widths[widths.index(max(widths))] -= 1
    return widths


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], status_key: str = ""
) -> None:
    """A boxed table fitted to the terminal; the `status_key` column is coloured on a
    terminal (unless NO_COLOR).

    Plain string formatting on purpose: a table library costs more to import (~0.15 s)
    than `inv health` spends checking the whole stack.
    """
    import os
    import shutil
    import textwrap

    cells = [["" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    headers = [c.replace("_", " ") for c in columns]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    borders = 3 * len(columns) + 1
    widths = _fit(natural, shutil.get_terminal_size((120, 24)).columns - borders)
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    status_at = columns.index(status_key) if status_key in columns else -1

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def render(values: Sequence[str], *, header: bool = False) -> list[str]:
        wrapped = [textwrap.wrap(v, w) or [""] for v, w in zip(values, widths, strict=True)]
        lines = []
        for n in range(max(len(w) for w in wrapped)):
            shown = []
            for i, width in enumerate(widths):
                text = (wrapped[i][n] if n < len(wrapped[i]) else "").ljust(width)
                if colour and not header and i == status_at:
                    text = _colour(text, STATUS_STYLE.get(values[i].lower(), ""))
                shown.append(f" {text} ")
            lines.append("│" + "│".join(shown) + "│")
        return lines

    out = [title, line("┌", "─", "┬", "┐"), *render(headers, header=True)]
    out.append(line("├", "─", "┼", "┤"))
    for row in cells:
        out += render(row)
    out.append(line("└", "─", "┴", "┘"))
    sys.stdout.write("\n".join(out) + "\n")


def report(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    json: bool,
    status_key: str = "",
    empty: str = "",
) -> None:
    """What a listing task prints: JSON for scripts, else a table (or `empty` when no rows)."""
    if json:
        print_json(list(rows))
    elif not rows and empty:
        say(empty)
    else:
        print_table(title, columns, rows, status_key=status_key)


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying anything; without a terminal, only `--yes` confirms."""
    from ops.errors import OpsError

    if yes:
        return
    if not sys.stdin.isatty():
        raise OpsError(f"refusing without confirmation: {question}", "pass --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in {"y", "yes"}:
        raise OpsError("cancelled; nothing was deleted", code=1)
