"""The initial schema: instances, history, outbox, deliveries, timers, definitions, tokens.

Revision ID: 0001_initial
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so that the key is the rowid and autoincrements.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "instances",
        _text("id"),
        _text("workflow"),
        _int("workflow_version"),
        _text("definition_hash"),
        _text("org"),
        _text("state"),
        _text("data"),
        _int("version"),
        _text("created_at"),
        _text("updated_at"),
        _text("entered_at"),
        sa.Column("final", sa.Boolean(), nullable=False),
        _text("due_at", nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        _text("parent_id", nullable=True),
        _text("unit", nullable=True),
        _text("head_hash"),
        _int("children_version"),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
    )
    op.create_index("ix_instances_workflow_state", "instances", ["workflow", "state"])
    op.create_index("ix_instances_org", "instances", ["org"])
    op.create_index("ix_instances_due_at", "instances", ["due_at"])
    op.create_index("ix_instances_parent_id", "instances", ["parent_id"])
    op.create_index("ix_instances_unit", "instances", ["unit"])
    op.create_index("ix_instances_created", "instances", ["created_at", "id"])

    op.create_table(
        "history",
        _text("instance_id"),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        _text("workflow"),
        _int("workflow_version"),
        _text("definition_hash"),
        _text("trigger"),
        _text("source", nullable=True),
        _text("target"),
        _text("actor"),
        _text("role"),
        _text("reason", nullable=True),
        _text("payload"),
        _text("visibility"),
        _text("occurred_at"),
        _text("recorded_at"),
        _text("command_id", nullable=True),
        _text("prev_hash"),
        _text("hash"),
        _text("parent_id", nullable=True),
        sa.PrimaryKeyConstraint("instance_id", "seq", name="pk_history"),
        sa.UniqueConstraint("command_id", name="uq_history_command_id"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_history_instance"),
    )

    op.create_table(
        "outbox",
        sa.Column("position", ROW_ID, nullable=False, autoincrement=True),
        _text("event_id"),
        _text("instance_id"),
        _int("seq"),
        _text("type"),
        _text("org"),
        _text("body"),
        _text("created_at"),
        sa.PrimaryKeyConstraint("position", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "deliveries",
        _text("event_id"),
        _text("sink"),
        _text("status"),
        _int("attempts"),
        _text("next_attempt_at", nullable=True),
        _text("last_error", nullable=True),
        _text("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("event_id", "sink", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])

    op.create_table(
        "timers",
        sa.Column("id", ROW_ID, nullable=False, autoincrement=True),
        _text("instance_id"),
        _text("kind"),
        _text("trigger"),
        _text("due_at"),
        _int("version"),
        _text("org"),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_timers_instance"),
    )
    op.create_index("ix_timers_due_at", "timers", ["due_at"])
    op.create_index("ix_timers_instance_id", "timers", ["instance_id"])

    op.create_table(
        "definitions",
        _text("hash"),
        _text("workflow"),
        _int("version"),
        _text("body"),
        _text("created_at"),
        sa.PrimaryKeyConstraint("hash", name="pk_definitions"),
    )

    op.create_table(
        "tokens",
        _text("token_hash"),
        _text("actor"),
        _text("created_at"),
        _text("revoked_at", nullable=True),
        _text("label", nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_tokens"),
    )


def downgrade() -> None:
    for table in ("tokens", "definitions", "timers", "deliveries", "outbox", "history"):
        op.drop_table(table)
    op.drop_table("instances")
