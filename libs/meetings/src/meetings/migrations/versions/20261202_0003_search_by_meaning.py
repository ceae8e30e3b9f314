"""search by meaning: pgvector, transcript chunks with embeddings (HNSW), the analysis note,
each segment's own tsvector (where a keyword hit was said, without re-parsing)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

# Frozen copy of meetings.models.SEGMENT_VECTOR_SQL as of this revision.
SEGMENT_VECTOR_SQL = "to_tsvector('english'::regconfig, text)"

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _Vector(UserDefinedType[list[float]]):
    # Frozen copy of meetings.models.Vector: migrations never import the models.
    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "vector(384)"


def upgrade() -> None:
    # pgserver's Postgres and the compose image ship pgvector; compose also creates it at
    # initdb. IF NOT EXISTS needs no privilege when it is already there.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "transcript_chunks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("segment_position", sa.Integer(), nullable=False),
        sa.Column("start_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("embedding", _Vector(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_transcript_chunks_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_chunks")),
        sa.UniqueConstraint(
            "meeting_id", "position", name=op.f("uq_transcript_chunks_meeting_id_position")
        ),
    )
    op.create_index(
        "ix_transcript_chunks_embedding",
        "transcript_chunks",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    # Nullable, no default: instant on a big table.
    op.add_column("summaries", sa.Column("note", sa.Text(), nullable=True))
    # A stored generated column rewrites the table once (minutes for millions of segments);
    # afterwards finding the segment a keyword hit was said in reads it instead of parsing
    # every segment of the hits on every search.
    op.add_column(
        "transcript_segments",
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed(SEGMENT_VECTOR_SQL, persisted=True),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("transcript_segments", "tsv")
    op.drop_column("summaries", "note")
    op.drop_index(
        "ix_transcript_chunks_embedding", table_name="transcript_chunks", postgresql_using="hnsw"
    )
    op.drop_table("transcript_chunks")
    # The extension stays: other databases' objects or a DBA may use it.
