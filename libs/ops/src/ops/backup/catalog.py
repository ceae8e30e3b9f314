"""`inv backup.list` and retention: the archives of one environment, newest first."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ops import console
from ops.backup import archive
from ops.environment import Environment


def prune(env: Environment, keep: int, *, protect: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` archives of `env` (and their verification records)."""
    found = archives(env)
    doomed = [p for p in found[: max(0, len(found) - keep)] if p != protect]
    for path in doomed:
        path.unlink(missing_ok=True)
        archive.sidecar_path(path).unlink(missing_ok=True)
        console.say(f"deleted {path.name} (--keep {keep})")
    return doomed


def archives(env: Environment) -> list[Path]:
    """Archives of `env`, oldest first (their names carry the UTC creation time)."""
    directory = env.backups_dir
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if archive.is_archive_name(p.name))


def _age(then: datetime) -> str:
    seconds = max(0, int((archive.utc_now() - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def list_backups(env: Environment) -> list[dict[str, object]]:
    """One row per archive of `env`, newest first."""
    rows: list[dict[str, object]] = []
    for path in reversed(archives(env)):
        row: dict[str, object] = {
            "name": path.name,
            "path": str(path),
            "size": console.size(path.stat().st_size),
            "bytes": path.stat().st_size,
            "verified": archive.verification_state(path),
        }
        try:
            manifest = archive.read_manifest(path)
        except archive.ArchiveError as exc:
            row.update(age="?", created_at="", revision="?", media=0, verified="unreadable")
            row["problem"] = str(exc)
        else:
            row.update(
                age=_age(manifest.created),
                created_at=manifest.created_at,
                revision=manifest.alembic_revision or "none",
                media=len(manifest.media_parts),
                rows=sum(manifest.row_counts.values()),
            )
        rows.append(row)
    return rows
