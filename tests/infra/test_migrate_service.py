"""The compose `migrate` service's command really migrates, with what the image installs.

The backend image installs mi-meetings as a wheel (uv sync --no-editable), so the migration
scripts must ship inside that wheel, and the command must need nothing but DATABASE_URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from meetings import migrations

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("validators")
def test_the_migrate_command_brings_an_empty_database_to_head(
    infra_check,
    tmp_path,
    empty_database_url,
):
    env_file = infra_check.write_env_file("prod", infra_check.throwaway_env("prod"), tmp_path)
    config = infra_check.merged_config(ROOT, "prod", env_file)
    command = config["services"]["migrate"]["command"]
    assert command[0] == "python"
    assert migrations.current(empty_database_url) is None

    proc = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=tmp_path,  # not the repo: the scripts must come from the installed package
        env={"PATH": os.environ["PATH"], "DATABASE_URL": empty_database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "migrations: at head" in proc.stdout
    assert migrations.current(empty_database_url) == migrations.head()


def test_the_meetings_wheel_ships_the_migration_scripts(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    subprocess.run(
        [uv, "build", "--package", "mi-meetings", "--wheel", "--out-dir", str(tmp_path), "-q"],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("mi_meetings-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"meetings/migrations/env.py", "meetings/migrations/script.py.mako"} <= names
    versions = "meetings/migrations/versions/"
    shipped = {n for n in names if n.startswith(versions) and n.endswith(".py")}
    in_repo = {
        f"{versions}{p.name}"
        for p in (ROOT / "libs/meetings/src/meetings/migrations/versions").glob("*.py")
    }
    assert in_repo and in_repo <= shipped
