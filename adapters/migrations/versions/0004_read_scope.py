"""Read scope: the reader principals of every instance, written with each step.

Instances written before this revision have no reader rows, so scoped reads do not show them
until ``xieshang audit readers`` (``Engine.rebuild_readers``) writes them.

Revision ID: 0004_read_scope
Revises: 0003_ledger
Create Date: 2025-01-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_read_scope"
down_revision: str | Sequence[str] | None = "0003_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "readers",
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "principal", name="pk_readers"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_readers_instance"),
    )
    op.create_index("ix_readers_principal", "readers", ["principal", "instance_id"])


def downgrade() -> None:
    op.drop_index("ix_readers_principal", table_name="readers")
    op.drop_table("readers")
