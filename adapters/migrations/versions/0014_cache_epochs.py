"""A counter of in-place rewrites that processes' caches compare against.

A process caches each instance's readers with the instance's version, and serves them while the
version holds. Rebuilding the readers (``xieshang audit readers``, after a definition's read
rules changed) rewrites them without a new version, so another process kept serving the old
ones until the instance's next step. Such a rewrite now counts ``cache_epochs('readers')`` up
in its transaction, and every store reads the counter at most once a second before it serves
readers from its cache, dropping them when the counter moved.

Revision ID: 0014_cache_epochs
Revises: 0013_delivery_position
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_cache_epochs"
down_revision: str | Sequence[str] | None = "0013_delivery_position"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "cache_epochs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cache_epochs"),
    )
    op.bulk_insert(table, [{"name": "readers", "value": 0}])


def downgrade() -> None:
    op.drop_table("cache_epochs")
