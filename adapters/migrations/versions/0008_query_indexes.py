"""Indexes for every query shape: the first page is read in order from an index, never sorted.

Queries page by (created_at, id). An index on the columns a query asks to be equal, followed by
those two, lets the database read the first page in order and stop; an index on the equal
columns alone makes it sort every match for each page (a million rows: seconds). The indexes on
workflow and state, parent and unit gain the two columns; org with workflow is new; the
overdue instances, few, get partial indexes (of all orgs and by org), which a step that leaves
an instance not overdue does not write. ``ix_instances_org`` goes: ``ix_instances_org_created``
begins with the same column.

Revision ID: 0008_query_indexes
Revises: 0007_org_created
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_query_indexes"
down_revision: str | Sequence[str] | None = "0007_org_created"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGED = ["created_at", "id"]
# the indexes this revision widens: (name, the columns before, the columns after)
_WIDENED = [
    ("ix_instances_workflow_state", ["workflow", "state"], ["workflow", "state", *_PAGED]),
    ("ix_instances_parent_id", ["parent_id"], ["parent_id", *_PAGED]),
    ("ix_instances_unit", ["unit"], ["unit", *_PAGED]),
]


def _overdue(name: str, columns: list[str]) -> None:
    """A partial index of the overdue instances."""
    op.create_index(
        name,
        "instances",
        columns,
        sqlite_where=sa.text("overdue = 1"),
        postgresql_where=sa.text("overdue"),
    )


def upgrade() -> None:
    for name, _, after in _WIDENED:
        op.drop_index(name, table_name="instances")
        op.create_index(name, "instances", after)
    op.drop_index("ix_instances_org", table_name="instances")
    op.create_index("ix_instances_org_workflow", "instances", ["org", "workflow", *_PAGED])
    _overdue("ix_instances_overdue", _PAGED)
    _overdue("ix_instances_org_overdue", ["org", *_PAGED])


def downgrade() -> None:
    op.drop_index("ix_instances_org_overdue", table_name="instances")
    op.drop_index("ix_instances_overdue", table_name="instances")
    op.drop_index("ix_instances_org_workflow", table_name="instances")
    op.create_index("ix_instances_org", "instances", ["org"])
    for name, before, _ in _WIDENED:
        op.drop_index(name, table_name="instances")
        op.create_index(name, "instances", before)
