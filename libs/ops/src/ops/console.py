"""Terminal output for tasks: tables with a status column, and JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], status_key: str = ""
) -> None:
    """A rich table; the `status_key` column is coloured by its value."""
    from rich.console import Console  # rich costs ~50 ms to import: only when printing
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = "" if row.get(column) is None else str(row[column])
            if column == status_key:
                value = f"[{STATUS_STYLE.get(value, '')}]{value}[/]"
            cells.append(value)
        table.add_row(*cells)
    Console(soft_wrap=False).print(table)
