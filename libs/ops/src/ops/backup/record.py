"""What monitoring learns of backups: the last verified one's time, size and duration.

Written in the textfile-collector format (`.prom`), which the worker's exporter
(BACKUP_STATUS_DIR) and node-exporter's textfile collector both read; the BackupTooOld alert
fires when the timestamp grows old or goes missing.
"""

from __future__ import annotations

import time
from pathlib import Path

from ops import durable
from ops.environment import Environment

SUCCESS_RECORD = "last-success.prom"


def record_success(env: Environment, size: int, seconds: float) -> Path:
    """Note a verified backup where monitoring reads it; a scrape never sees half a file."""
    directory = env.backup_status_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    label = f'{{env="{env}"}}'
    text = (
        "# HELP mi_backup_last_success_timestamp_seconds When the last verified backup finished.\n"
        "# TYPE mi_backup_last_success_timestamp_seconds gauge\n"
        f"mi_backup_last_success_timestamp_seconds{label} {time.time():.3f}\n"
        "# HELP mi_backup_last_size_bytes Size of the last verified backup archive.\n"
        "# TYPE mi_backup_last_size_bytes gauge\n"
        f"mi_backup_last_size_bytes{label} {size}\n"
        "# HELP mi_backup_last_duration_seconds How long the last verified backup took.\n"
        "# TYPE mi_backup_last_duration_seconds gauge\n"
        f"mi_backup_last_duration_seconds{label} {seconds:.3f}\n"
    )
    target = directory / SUCCESS_RECORD
    durable.write_atomically(target, text, mode=0o644)
    return target
