"""The store-wide ledger: one gap-free, hash-chained position per history row, and its head.

Existing history rows are ledgered in the order they were recorded.

Revision ID: 0003_ledger
Revises: 0002_calendar_basis
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_ledger"
down_revision: str | Sequence[str] | None = "0002_calendar_basis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    from xieshang.shared import GENESIS, LedgerEntry

    ledger = op.create_table(
        "ledger",
        sa.Column("position", ROW_ID, nullable=False, autoincrement=False),
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("org", sa.Text(), nullable=False),
        sa.Column("row_hash", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_ledger"),
        sa.UniqueConstraint("instance_id", "seq", name="uq_ledger_row"),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("position", ROW_ID, nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_head"),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT h.instance_id, h.seq, i.org, h.hash FROM history h "
            "JOIN instances i ON i.id = h.instance_id ORDER BY h.recorded_at, h.instance_id, h.seq"
        )
    ).fetchall()
    position, prev = 0, GENESIS
    entries = []
    for instance_id, seq, org, row_hash in rows:
        position += 1
        entry = LedgerEntry(position, instance_id, seq, org, row_hash, prev).sealed()
        entries.append(entry.to_dict())
        prev = entry.hash
    if entries:
        op.bulk_insert(ledger, entries)
    op.bulk_insert(head, [{"id": 1, "position": position, "hash": prev}])


def downgrade() -> None:
    op.drop_table("ledger_head")
    op.drop_table("ledger")
