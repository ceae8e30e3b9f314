"""pipeline recovery: a running step's lease on its meeting, and how often it was recovered

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column and a constant default: Postgres adds both without rewriting rows.
    op.add_column("meetings", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "meetings",
        sa.Column("recoveries", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("meetings", "recoveries")
    op.drop_column("meetings", "lease_until")
