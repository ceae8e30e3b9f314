"""Terminal output for tasks: tables with a status column, and JSON for scripts."""

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


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], status_key: str = ""
) -> None:
    """A rich table; the `status_key` column is coloured by its value."""
    from rich.console import Console  # rich costs ~50 ms to import: only when printing
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = escape("" if row.get(column) is None else str(row[column]))
            style = STATUS_STYLE.get(value.lower()) if column == status_key else None
            if style:
                value = f"[{style}]{value}[/]"
            cells.append(value)
        table.add_row(*cells)
    Console(soft_wrap=False).print(table)


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
