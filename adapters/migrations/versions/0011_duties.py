"""Members' duty records and the audited recomputes of a year (docs/duties.md).

``duty_records`` holds the points each history row earned under each duty rule, written in the
row's transaction; ``duty_recomputes`` one row per recompute of a year, with the rules' body.

Revision ID: 0011_duties
Revises: 0010_versions
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_duties"
down_revision: str | Sequence[str] | None = "0010_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "duty_records",
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("org", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "seq", "rule", "member", name="pk_duty_records"),
    )
    op.create_index("ix_duty_records_year_member", "duty_records", ["year", "member"])
    op.create_table(
        "duty_recomputes",
        sa.Column("id", ROW_ID, nullable=False, autoincrement=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("rules_hash", sa.Text(), nullable=False),
        sa.Column("rules_body", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_duty_recomputes"),
    )


def downgrade() -> None:
    op.drop_table("duty_recomputes")
    op.drop_index("ix_duty_records_year_member", table_name="duty_records")
    op.drop_table("duty_records")
