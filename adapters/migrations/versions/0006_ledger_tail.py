"""The ledger's head is its last position: the one-row head table and the second index go.

Each commit used to read and rewrite a one-row head table and keep a unique index of (instance,
seq) beside the position; both cost a page write per commit. The head is now the ledger's last
position (writers on PostgreSQL are ordered by a transaction-scoped advisory lock), and a
history row ledgered twice is a finding of ``audit verify`` (``ledger-duplicate``).

Revision ID: 0006_ledger_tail
Revises: 0005_row_seal
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_ledger_tail"
down_revision: str | Sequence[str] | None = "0005_row_seal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("ledger_head")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint("uq_ledger_row", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.create_unique_constraint("uq_ledger_row", ["instance_id", "seq"])
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("position", ROW_ID, nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_head"),
    )
    last = (
        op.get_bind()
        .execute(sa.text("SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1"))
        .fetchone()
    )
    position, digest = (int(last[0]), str(last[1])) if last else (0, "")
    op.bulk_insert(head, [{"id": 1, "position": position, "hash": digest}])
