"""History rows record the warnings of soft checks and a creation's unit, and seal each payload
field by a digest.

A sealed row's hash covers each payload field by a salted digest (``seal`` keeps the salts), so
a field can later be redacted and the chain still verifies. Rows written before this revision
have no seal: their hash covers the payload as it is, and their fields cannot be redacted.

Revision ID: 0005_row_seal
Revises: 0004_read_scope
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_row_seal"
down_revision: str | Sequence[str] | None = "0004_read_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("warnings", "seal", "unit")


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("history", sa.Column(column, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("history") as batch:
        for column in _COLUMNS:
            batch.drop_column(column)
