"""Each delivery keeps its event's outbox position, and the relay reads a sink's pending ones
in that order from an index.

The relay's pass read the pending deliveries of every sink, joined each to its outbox row and
sorted them all by position to take the first few hundred: with a backlog, every pass sorted the
whole backlog again. ``(sink, status, position)`` gives one sink's pending deliveries in commit
order, and the first rows are the ones a pass takes.

Revision ID: 0013_delivery_position
Revises: 0012_inbox_indexes
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_delivery_position"
down_revision: str | Sequence[str] | None = "0012_inbox_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("position", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE deliveries SET position = "
        "(SELECT outbox.position FROM outbox WHERE outbox.event_id = deliveries.event_id)"
    )
    op.create_index("ix_deliveries_pending", "deliveries", ["sink", "status", "position"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("position")
