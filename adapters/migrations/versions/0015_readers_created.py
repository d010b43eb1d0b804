"""Readers carry their instance's creation time, indexed by principal in page order.

A scoped page was read along the instances of the org, each tested against the actor's
principals: quick when the actor reads many of them, but an actor who reads few (an officer of
a small unit, a member who reads only what names them) walked the whole org for a page, and
every page after. ``readers.created_at`` (the instance's, which never changes) and an index on
``(principal, created_at, instance_id)`` let such a page be read from the actor's own reader
rows, in page order. The index replaces ``(principal, instance_id)``, which it also serves.

Revision ID: 0015_readers_created
Revises: 0014_cache_epochs
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_readers_created"
down_revision: str | Sequence[str] | None = "0014_cache_epochs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("readers", sa.Column("created_at", sa.Text(), nullable=True))
    op.execute(
        "UPDATE readers SET created_at = "
        "(SELECT created_at FROM instances WHERE instances.id = readers.instance_id)"
    )
    with op.batch_alter_table("readers") as batch:
        batch.alter_column("created_at", existing_type=sa.Text(), nullable=False)
        batch.drop_index("ix_readers_principal")
        batch.create_index(
            "ix_readers_principal_created", ["principal", "created_at", "instance_id"]
        )
    if op.get_bind().dialect.name == "postgresql":
        # every row was rewritten: the planner's statistics of the table start again now
        # (VACUUM, which cannot run in the migration's transaction, is left to autovacuum)
        op.execute("ANALYZE readers")


def downgrade() -> None:
    with op.batch_alter_table("readers") as batch:
        batch.drop_index("ix_readers_principal_created")
        batch.create_index("ix_readers_principal", ["principal", "instance_id"])
        batch.drop_column("created_at")
