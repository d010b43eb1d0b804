"""An org's instances in the order of creation: scoped queries and inboxes page along it.

Every read that takes an actor is limited to the actor's org and pages by (created_at, id); with
this index the database walks one org's instances in that order and stops when the page is
full, instead of sorting all of the org's instances for every page.

Revision ID: 0007_org_created
Revises: 0006_ledger_tail
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_org_created"
down_revision: str | Sequence[str] | None = "0006_ledger_tail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_instances_org_created", "instances", ["org", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_instances_org_created", table_name="instances")
