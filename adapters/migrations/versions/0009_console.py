"""The console's sessions and the public page's ratings.

``web_sessions``: a signed-in browser's session, by the sha256 of its cookie, referencing the
token it was opened with by that token's hash (a revoked token ends its sessions).
``public_ratings``: the public's ratings of proposals (网民满意度), one per browser per proposal.

Revision ID: 0009_console
Revises: 0008_query_indexes
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_console"
down_revision: str | Sequence[str] | None = "0008_query_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("session_hash", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("csrf", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("session_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_token", "web_sessions", ["token_hash"])
    op.create_table(
        "public_ratings",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("org", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("browser", sa.Text(), nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("rating", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_public_ratings"),
        sa.UniqueConstraint("instance_id", "browser", name="uq_public_ratings_browser"),
    )
    op.create_index("ix_public_ratings_client", "public_ratings", ["client", "created_at"])
    op.create_index("ix_public_ratings_org", "public_ratings", ["org", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_public_ratings_org", table_name="public_ratings")
    op.drop_index("ix_public_ratings_client", table_name="public_ratings")
    op.drop_table("public_ratings")
    op.drop_index("ix_web_sessions_token", table_name="web_sessions")
    op.drop_table("web_sessions")
