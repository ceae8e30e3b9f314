"""Migrations on a real Postgres: up, check, down, up again; drift detection; revision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from meetings import migrations
from meetings.models import Base
from mi_testing import subprocess_env

APP_TABLES = set(Base.metadata.tables)
MEMBER_DIR = Path(__file__).resolve().parents[1]


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    assert migrations.current(url) is None
    assert tables(url) == set()

    migrations.upgrade(url)
    assert migrations.current(url) == migrations.head()
    assert tables(url) == APP_TABLES
    migrations.check(url)  # the equivalent of `alembic check`: models == migrations

    migrations.downgrade(url, "base")
    assert migrations.current(url) is None
    assert tables(url) == set()

    migrations.upgrade(url, "head")
    assert migrations.is_up_to_date(url)
    migrations.check(url)


def test_check_detects_drift(database_owner_url: str) -> None:
    engine = create_engine(database_owner_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_meetings_status"))
        conn.execute(text("ALTER TABLE meetings DROP COLUMN completed_at"))
    engine.dispose()
    with pytest.raises(migrations.SchemaDriftError) as caught:
        migrations.check(database_owner_url)
    message = str(caught.value)
    assert "completed_at" in message
    assert "ix_meetings_status" in message
    assert "inv db.revision" in message


def test_revision_autogenerates_the_missing_change(database_owner_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_owner_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE meetings DROP COLUMN completed_at"))
    engine.dispose()

    path = migrations.revision(database_owner_url, "restore completed_at", directory=tmp_path)
    assert path.parent == tmp_path
    script = path.read_text()
    head = migrations.head()
    assert f"revision: str = '{int(head) + 1:04d}'" in script.replace('"', "'")
    assert f"down_revision: str | Sequence[str] | None = '{head}'" in script.replace('"', "'")
    assert "op.add_column('meetings'" in script.replace('"', "'")
    assert "completed_at" in script


def test_revision_needs_a_message(database_owner_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="message"):
        migrations.revision(database_owner_url, "  ", directory=tmp_path)


def test_history_starts_with_the_initial_schema() -> None:
    history = migrations.history()
    assert history[0][0] == "0001"
    assert "initial schema" in history[0][1]
    assert history[-1][0] == migrations.head()


def test_search_vector_is_generated_and_indexed(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO meetings (id, title, status, media_filename, content_type,"
                " size_bytes) VALUES (gen_random_uuid(), 't', 'done', 'f.wav', 'audio/wav', 1)"
                " RETURNING id"
            )
        )
        meeting_id = conn.execute(text("SELECT id FROM meetings")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO search_documents (meeting_id, title, summary, transcript)"
                " VALUES (:id, 'Budget', 'approved', 'we discussed hiring')"
            ),
            {"id": meeting_id},
        )
        vector = conn.execute(text("SELECT tsv::text FROM search_documents")).scalar_one()
        index = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_search_documents_tsv'")
        ).scalar_one()
    engine.dispose()
    assert "'budget':1A" in vector
    assert "'approv':2B" in vector
    assert "'hire':5C" in vector
    assert "USING gin (tsv)" in index


def test_alembic_ini_works_for_humans(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "current"],
        cwd=MEMBER_DIR,
        env=subprocess_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert migrations.head() in result.stdout
