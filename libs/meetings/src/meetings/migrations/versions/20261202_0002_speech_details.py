"""speech details: upload vocabulary, transcription progress, language probability, word timings

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # All nullable, no defaults: adding them rewrites no rows, so it is instant on big tables.
    op.add_column("meetings", sa.Column("vocabulary", sa.String(length=500), nullable=True))
    op.add_column("meetings", sa.Column("progress", sa.Float(), nullable=True))
    op.add_column("transcripts", sa.Column("language_probability", sa.Float(), nullable=True))
    op.add_column(
        "transcript_segments",
        sa.Column("words", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("transcript_segments", "words")
    op.drop_column("transcripts", "language_probability")
    op.drop_column("meetings", "progress")
    op.drop_column("meetings", "vocabulary")
