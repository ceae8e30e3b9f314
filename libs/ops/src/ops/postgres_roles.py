"""The stack's two database roles (an owner for migrations, backup and restore; an app role for
the services), made by running infra/postgres/roles.psql as the cluster's superuser.

The SQL has one home, that script: the compose postgres image runs the same file on a new
volume, a DBA runs it on a managed server, the local runtime and the tests run it through
psql from here. Values travel in the environment (the script reads them with `\\getenv`), so
no password ever shows on a command line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ops import binaries, project
from ops.errors import OpsError

SCRIPT = Path("infra/postgres/roles.psql")
KEYS = (
    "POSTGRES_OWNER_USER",
    "POSTGRES_OWNER_PASSWORD",
    "POSTGRES_APP_USER",
    "POSTGRES_APP_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_APP_STATEMENT_TIMEOUT",
)
"""What the script reads from its environment (the env schema's keys of the same names)."""


def script() -> Path:
    # The checkout ops is installed from (uv's editable workspace install), else the one the
    # command runs in.
    beside = Path(__file__).resolve().parents[4] / SCRIPT
    return beside if beside.is_file() else project.root() / SCRIPT


def apply(values: Mapping[str, str], admin: Mapping[str, str]) -> None:
    """Create or converge the roles and the database `values` name. `admin` is how to reach
    the server as its superuser, as libpq environment variables (PGHOST, PGPORT, PGUSER,
    PGPASSWORD)."""
    missing = [key for key in KEYS if not values.get(key)]
    if missing:
        raise OpsError(
            f"cannot create the database roles: {', '.join(missing)} not set",
            "run `uv run inv env.setup --env <env>` (it adds them)",
        )
    psql = binaries.require(binaries.postgres("psql"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PGDATABASE": "postgres",
        "PGCONNECT_TIMEOUT": "10",
        "PGAPPNAME": "mi-roles",
        **admin,
        **{key: values[key] for key in KEYS},
    }
    proc = subprocess.run(
        [str(psql), "--no-psqlrc", "--file", str(script())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise OpsError(
            f"creating the database roles failed: {' '.join(detail[-3:])}",
            f"run {SCRIPT} by hand as the superuser to see more "
            "(`psql -f infra/postgres/roles.psql` with the POSTGRES_* variables set)",
        )
