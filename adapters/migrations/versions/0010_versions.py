"""Instances can be suspended: the moment a suspension began, None while the instance runs.

Revision ID: 0010_versions
Revises: 0009_console
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_versions"
down_revision: str | Sequence[str] | None = "0009_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("instances", sa.Column("suspended_at", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a plain column in place; a batch copy of the table would
    # trip over the history rows that reference it
    op.execute("ALTER TABLE instances DROP COLUMN suspended_at")
