"""Indexes for the inbox's selects: each an exact range of the actor's org, read in page order.

An inbox is merged selects of one workflow and state each. Read along ``(workflow, state)``,
each select walked the instances of every org and, for a role bound to the instance's own unit,
of every unit, to find the few the actor may act on. ``(org, workflow, state)`` serves a role
that acts anywhere in its org (and a scoped list by workflow and state); ``(org, unit, workflow,
state)`` the selects of one unit and of the instances with no unit. Both end with the paging
columns, so the first page is read in order and never sorted.

Revision ID: 0012_inbox_indexes
Revises: 0011_duties
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_inbox_indexes"
down_revision: str | Sequence[str] | None = "0011_duties"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGED = ["created_at", "id"]
_NEW = [
    ("ix_instances_org_workflow_state", ["org", "workflow", "state", *_PAGED]),
    ("ix_instances_org_unit_state", ["org", "unit", "workflow", "state", *_PAGED]),
]


def upgrade() -> None:
    for name, columns in _NEW:
        op.create_index(name, "instances", columns)


def downgrade() -> None:
    for name, _ in reversed(_NEW):
        op.drop_index(name, table_name="instances")
