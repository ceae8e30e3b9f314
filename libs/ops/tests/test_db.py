"""`inv db.*` against a real Postgres (the mi_testing plugin starts one)."""

from __future__ import annotations

import pytest

from ops import db
from ops import env as env_files
from ops.environment import Environment
from ops.errors import OpsError

pytestmark = pytest.mark.slow


@pytest.fixture
def dev_env(scratch_root, empty_database_url):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    # `inv db.*` connects as the owner role (empty_database_url's), never as the services' role.
    lines = [
        f"DATABASE_OWNER_URL={empty_database_url}"
        if line.startswith("DATABASE_OWNER_URL=")
        else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    return Environment.parse("dev")


def test_migrate_up_down_and_up_again(dev_env):
    at, head = db.status(dev_env)
    assert at is None

    assert db.migrate(dev_env) == f"migrated dev from an empty database to {head}"
    assert db.status(dev_env) == (head, head)
    assert db.migrate(dev_env) == f"already at {head}; nothing to do"
    assert db.check(dev_env) == f"models and migrations agree (head {head})"

    assert "to base (empty schema)" in db.downgrade(dev_env, "base")
    assert db.status(dev_env)[0] is None
    db.migrate(dev_env)
    assert db.status(dev_env)[0] == head


def test_check_and_revision_refuse_a_database_behind_head(dev_env):
    with pytest.raises(OpsError, match="not at head") as info:
        db.check(dev_env)
    assert "inv db.migrate --env dev" in str(info.value)
    with pytest.raises(OpsError, match="not at head"):
        db.revision(dev_env, "should not be written")


def test_an_unreachable_database_says_to_start_the_stack(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    path.write_text(path.read_text().replace("POSTGRES_PORT=5433", "POSTGRES_PORT=1"))
    with pytest.raises(OpsError, match="the dev database does not answer") as info:
        db.status(Environment.parse("dev"))
    assert "inv up --env dev" in str(info.value)


def test_protected_envs_take_a_backup_before_schema_changes():
    # What the backup does is tested in test_backup.py (a verified archive, restorable).
    assert db.safety_backup(Environment.parse("dev"), skip=False) is None
    assert db.safety_backup(Environment.parse("prod"), skip=True) is None
    assert callable(db.safety_backup(Environment.parse("staging"), skip=False))


def test_an_env_file_from_before_the_owner_role_says_how_to_add_it(scratch_root):
    env = Environment.parse("dev")
    env_files.setup(env)
    text = env.env_file.read_text()
    env.env_file.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("DATABASE_OWNER_URL"))
        + "\n"
    )
    with pytest.raises(OpsError, match=r"DATABASE_OWNER_URL is not set in \.env\.dev") as info:
        db.status(env)
    assert "inv env.setup --env dev" in info.value.fix
