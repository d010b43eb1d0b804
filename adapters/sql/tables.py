"""The SQL schema: one SQLModel table per stored record; migration 0001 creates the same tables.

This is the one schema of the database: the store, the relay, the reports and the token store
all read and write these tables (by the SQLAlchemy ``Table`` handles at the end of the module).

Moments are ISO-8601 UTC text with microseconds (:func:`xieshang.records.iso`): fixed width, so
text order is time order on SQLite and PostgreSQL alike, and history rows keep the exact bytes
their hash covers. JSON columns are text for the same reason.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "ROW_ID",
    "CacheEpochRow",
    "DefinitionRow",
    "DeliveryRow",
    "DutyRecomputeRow",
    "DutyRow",
    "HistoryRow",
    "InstanceRow",
    "LedgerRow",
    "OutboxRow",
    "PublicRatingRow",
    "ReaderRow",
    "TimerRow",
    "TokenRow",
    "WebSessionRow",
    "definitions",
    "deliveries",
    "duty_recomputes",
    "duty_records",
    "history",
    "instances",
    "outbox",
    "public_ratings",
    "timers",
    "tokens",
    "web_sessions",
]

# BIGINT on PostgreSQL; INTEGER on SQLite so that the key is the rowid and autoincrements.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class InstanceRow(SQLModel, table=True):
    """One workflow instance: its state, data (JSON text) and version for optimistic writes."""

    __tablename__ = "instances"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_instances"),
        # Every query pages in creation order, (created_at, id): each index a query walks ends
        # with those two columns, after the columns it asks to be equal, so the database reads
        # the first page in order and stops, never sorting all the matches.
        Index("ix_instances_workflow_state", "workflow", "state", "created_at", "id"),
        Index("ix_instances_due_at", "due_at"),
        Index("ix_instances_parent_id", "parent_id", "created_at", "id"),
        Index("ix_instances_unit", "unit", "created_at", "id"),
        Index("ix_instances_created", "created_at", "id"),
        # scoped reads and inboxes page one org's instances in creation order
        Index("ix_instances_org_created", "org", "created_at", "id"),
        Index("ix_instances_org_workflow", "org", "workflow", "created_at", "id"),
        # an inbox reads one select per workflow and state (and, for a role bound to the
        # instance's own unit, per unit), each an exact range of one of these in page order
        Index("ix_instances_org_workflow_state", "org", "workflow", "state", "created_at", "id"),
        Index(
            "ix_instances_org_unit_state", "org", "unit", "workflow", "state", "created_at", "id"
        ),
        # overdue instances are few: partial indexes hold only them, and a step that leaves
        # ``overdue`` false (most steps) changes neither
        Index(
            "ix_instances_overdue",
            "created_at",
            "id",
            sqlite_where=text("overdue = 1"),
            postgresql_where=text("overdue"),
        ),
        Index(
            "ix_instances_org_overdue",
            "org",
            "created_at",
            "id",
            sqlite_where=text("overdue = 1"),
            postgresql_where=text("overdue"),
        ),
    )

    id: str = Field(sa_type=Text, primary_key=True)
    workflow: str = Field(sa_type=Text, nullable=False)
    workflow_version: int = Field(sa_type=Integer, nullable=False)
    definition_hash: str = Field(sa_type=Text, nullable=False)
    org: str = Field(sa_type=Text, nullable=False)
    state: str = Field(sa_type=Text, nullable=False)
    data: str = Field(sa_type=Text, nullable=False)
    version: int = Field(sa_type=Integer, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)
    updated_at: str = Field(sa_type=Text, nullable=False)
    entered_at: str = Field(sa_type=Text, nullable=False)
    final: bool = Field(sa_type=Boolean, nullable=False)
    due_at: str | None = Field(default=None, sa_type=Text, nullable=True)
    overdue: bool = Field(sa_type=Boolean, nullable=False)
    parent_id: str | None = Field(default=None, sa_type=Text, nullable=True)
    unit: str | None = Field(default=None, sa_type=Text, nullable=True)
    head_hash: str = Field(sa_type=Text, nullable=False)
    children_version: int = Field(sa_type=Integer, nullable=False)
    # the calendar the deadline was counted on (xieshang.schedules), None if it needs none
    due_basis: str | None = Field(default=None, sa_type=Text, nullable=True)
    # since when the instance is suspended (xieshang.suspension), None when it runs
    suspended_at: str | None = Field(default=None, sa_type=Text, nullable=True)


class HistoryRow(SQLModel, table=True):
    """One audit row (:class:`xieshang.records.HistoryEntry`), hash-chained per instance."""

    __tablename__ = "history"
    __table_args__ = (
        PrimaryKeyConstraint("instance_id", "seq", name="pk_history"),
        UniqueConstraint("command_id", name="uq_history_command_id"),
        ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_history_instance"),
    )

    instance_id: str = Field(sa_type=Text, primary_key=True)
    seq: int = Field(sa_type=Integer, primary_key=True, sa_column_kwargs={"autoincrement": False})
    workflow: str = Field(sa_type=Text, nullable=False)
    workflow_version: int = Field(sa_type=Integer, nullable=False)
    definition_hash: str = Field(sa_type=Text, nullable=False)
    trigger: str = Field(sa_type=Text, nullable=False)
    source: str | None = Field(default=None, sa_type=Text, nullable=True)
    target: str = Field(sa_type=Text, nullable=False)
    actor: str = Field(sa_type=Text, nullable=False)
    role: str = Field(sa_type=Text, nullable=False)
    reason: str | None = Field(default=None, sa_type=Text, nullable=True)
    payload: str = Field(sa_type=Text, nullable=False)
    visibility: str = Field(sa_type=Text, nullable=False)
    occurred_at: str = Field(sa_type=Text, nullable=False)
    recorded_at: str = Field(sa_type=Text, nullable=False)
    command_id: str | None = Field(default=None, sa_type=Text, nullable=True)
    prev_hash: str = Field(sa_type=Text, nullable=False)
    hash: str = Field(sa_type=Text, nullable=False)
    parent_id: str | None = Field(default=None, sa_type=Text, nullable=True)
    deadline: str | None = Field(default=None, sa_type=Text, nullable=True)  # JSON, when set
    # JSON, when set: the soft checks the step passed with a warning
    warnings: str | None = Field(default=None, sa_type=Text, nullable=True)
    # JSON, when set: each payload field's salt, or the digest kept of a redacted field
    seal: str | None = Field(default=None, sa_type=Text, nullable=True)
    unit: str | None = Field(default=None, sa_type=Text, nullable=True)  # a creation's unit


class ReaderRow(SQLModel, table=True):
    """One reader principal of an instance (``r:ROLE``, ``u:ROLE:UNIT``, ``a:ACTOR``, ``*``)
    and the highest level it reads at (1 see, 2 data, 3 internal); rewritten with each step.
    ``created_at`` is the instance's: a principal's rows are indexed in page order, so a page
    of what a principal reads is a range of them."""

    __tablename__ = "readers"
    __table_args__ = (
        PrimaryKeyConstraint("instance_id", "principal", name="pk_readers"),
        ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_readers_instance"),
        Index("ix_readers_principal_created", "principal", "created_at", "instance_id"),
    )

    instance_id: str = Field(sa_type=Text, primary_key=True)
    principal: str = Field(sa_type=Text, primary_key=True)
    level: int = Field(sa_type=Integer, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)


class OutboxRow(SQLModel, table=True):
    """One CloudEvent waiting for the relay; ``position`` is the order events were committed in."""

    __tablename__ = "outbox"
    __table_args__ = (
        PrimaryKeyConstraint("position", name="pk_outbox"),
        UniqueConstraint("event_id", name="uq_outbox_event_id"),
        # positions only grow, also after the newest rows are deleted: the relay reads in order
        {"sqlite_autoincrement": True},
    )

    position: int | None = Field(
        default=None, sa_type=ROW_ID, primary_key=True, sa_column_kwargs={"autoincrement": True}
    )
    event_id: str = Field(sa_type=Text, nullable=False)
    instance_id: str = Field(sa_type=Text, nullable=False)
    seq: int = Field(sa_type=Integer, nullable=False)
    type: str = Field(sa_type=Text, nullable=False)
    org: str = Field(sa_type=Text, nullable=False)
    body: str = Field(sa_type=Text, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)


class DeliveryRow(SQLModel, table=True):
    """The delivery of one outbox event to one sink: pending, delivered or dead."""

    __tablename__ = "deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("event_id", "sink", name="pk_deliveries"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_pending", "sink", "status", "position"),
    )

    event_id: str = Field(sa_type=Text, primary_key=True)
    sink: str = Field(sa_type=Text, primary_key=True)
    status: str = Field(sa_type=Text, nullable=False)  # 'pending' | 'delivered' | 'dead'
    attempts: int = Field(sa_type=Integer, nullable=False)
    next_attempt_at: str | None = Field(default=None, sa_type=Text, nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text, nullable=True)
    # the event's outbox position: a sink's pending deliveries are read in commit order
    position: int | None = Field(default=None, sa_type=Integer, nullable=True)
    delivered_at: str | None = Field(default=None, sa_type=Text, nullable=True)


class TimerRow(SQLModel, table=True):
    """A pending timer (:class:`xieshang.records.TimerRecord`)."""

    __tablename__ = "timers"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_timers"),
        ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_timers_instance"),
        Index("ix_timers_due_at", "due_at"),
        Index("ix_timers_instance_id", "instance_id"),
    )

    id: int | None = Field(
        default=None, sa_type=ROW_ID, primary_key=True, sa_column_kwargs={"autoincrement": True}
    )
    instance_id: str = Field(sa_type=Text, nullable=False)
    kind: str = Field(sa_type=Text, nullable=False)
    trigger: str = Field(sa_type=Text, nullable=False)
    due_at: str = Field(sa_type=Text, nullable=False)
    version: int = Field(sa_type=Integer, nullable=False)
    org: str = Field(sa_type=Text, nullable=False)
    basis: str | None = Field(default=None, sa_type=Text, nullable=True)


class LedgerRow(SQLModel, table=True):
    """One position of the store-wide ledger (:class:`xieshang.ledger.LedgerEntry`)."""

    __tablename__ = "ledger"
    __table_args__ = (PrimaryKeyConstraint("position", name="pk_ledger"),)

    position: int = Field(
        sa_type=ROW_ID, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    instance_id: str = Field(sa_type=Text, nullable=False)
    seq: int = Field(sa_type=Integer, nullable=False)
    org: str = Field(sa_type=Text, nullable=False)
    row_hash: str = Field(sa_type=Text, nullable=False)
    prev_hash: str = Field(sa_type=Text, nullable=False)
    hash: str = Field(sa_type=Text, nullable=False)


class DefinitionRow(SQLModel, table=True):
    """A workflow definition as JSON text, by content hash: what running instances are pinned to."""

    __tablename__ = "definitions"
    __table_args__ = (PrimaryKeyConstraint("hash", name="pk_definitions"),)

    hash: str = Field(sa_type=Text, primary_key=True)
    workflow: str = Field(sa_type=Text, nullable=False)
    version: int = Field(sa_type=Integer, nullable=False)
    body: str = Field(sa_type=Text, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)


class TokenRow(SQLModel, table=True):
    """An API token, stored only as its hash, and the actor it acts as (JSON text)."""

    __tablename__ = "tokens"
    __table_args__ = (PrimaryKeyConstraint("token_hash", name="pk_tokens"),)

    token_hash: str = Field(sa_type=Text, primary_key=True)
    actor: str = Field(sa_type=Text, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)
    revoked_at: str | None = Field(default=None, sa_type=Text, nullable=True)
    label: str | None = Field(default=None, sa_type=Text, nullable=True)


class WebSessionRow(SQLModel, table=True):
    """A console session: the sha256 of its cookie, the token it was opened with (by hash, so
    revoking the token ends it) and its CSRF secret."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        PrimaryKeyConstraint("session_hash", name="pk_web_sessions"),
        Index("ix_web_sessions_token", "token_hash"),
    )

    session_hash: str = Field(sa_type=Text, primary_key=True)
    token_hash: str = Field(sa_type=Text, nullable=False)
    csrf: str = Field(sa_type=Text, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)
    expires_at: str = Field(sa_type=Text, nullable=False)
    ended_at: str | None = Field(default=None, sa_type=Text, nullable=True)


class PublicRatingRow(SQLModel, table=True):
    """A public rating (网民满意度) of a proposal: one per browser per proposal; the client's
    address is kept only as a keyed hash, for the rate limit."""

    __tablename__ = "public_ratings"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_public_ratings"),
        UniqueConstraint("instance_id", "browser", name="uq_public_ratings_browser"),
        Index("ix_public_ratings_client", "client", "created_at"),
        Index("ix_public_ratings_org", "org", "created_at"),
    )

    id: str = Field(sa_type=Text, primary_key=True)
    org: str = Field(sa_type=Text, nullable=False)
    instance_id: str = Field(sa_type=Text, nullable=False)
    browser: str = Field(sa_type=Text, nullable=False)
    client: str = Field(sa_type=Text, nullable=False)
    rating: str = Field(sa_type=Text, nullable=False)
    created_at: str = Field(sa_type=Text, nullable=False)


class DutyRow(SQLModel, table=True):
    """A member's duty record (:class:`xieshang.DutyRecord`): points earned by one history row
    under one rule, written in that row's transaction (migration 0011_duties)."""

    __tablename__ = "duty_records"
    __table_args__ = (
        PrimaryKeyConstraint("instance_id", "seq", "rule", "member", name="pk_duty_records"),
        Index("ix_duty_records_year_member", "year", "member"),
    )

    instance_id: str = Field(sa_type=Text, primary_key=True)
    seq: int = Field(sa_type=Integer, primary_key=True)
    rule: str = Field(sa_type=Text, primary_key=True)
    member: str = Field(sa_type=Text, primary_key=True)
    org: str = Field(sa_type=Text, nullable=False)
    year: int = Field(sa_type=Integer, nullable=False)
    category: str = Field(sa_type=Text, nullable=False)
    points: int = Field(sa_type=Integer, nullable=False)
    occurred_at: str = Field(sa_type=Text, nullable=False)


class DutyRecomputeRow(SQLModel, table=True):
    """One audited recompute of a year's duty records: the rules applied (hash and body), who
    ran it, when, each member's totals before and after (JSON text), and its hash."""

    __tablename__ = "duty_recomputes"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_duty_recomputes"),)

    id: int | None = Field(default=None, sa_type=ROW_ID, primary_key=True)
    year: int = Field(sa_type=Integer, nullable=False)
    rules_hash: str = Field(sa_type=Text, nullable=False)
    rules_body: str = Field(sa_type=Text, nullable=False)
    actor: str = Field(sa_type=Text, nullable=False)
    at: str = Field(sa_type=Text, nullable=False)
    before: str = Field(sa_type=Text, nullable=False)
    after: str = Field(sa_type=Text, nullable=False)
    hash: str = Field(sa_type=Text, nullable=False)


class CacheEpochRow(SQLModel, table=True):
    """A counter every process's cache compares with what it last read: a write that changes
    what the cache holds without a new version (the readers of an instance, rebuilt in place)
    counts one up, and each process drops that part of its cache within a second."""

    __tablename__ = "cache_epochs"
    __table_args__ = (PrimaryKeyConstraint("name", name="pk_cache_epochs"),)

    name: str = Field(sa_type=Text, primary_key=True)  # 'readers'
    value: int = Field(sa_type=Integer, nullable=False)


# SQLAlchemy Core handles of the tables above, for the adapters that write SQL of their own
instances: Table = SQLModel.metadata.tables["instances"]
history: Table = SQLModel.metadata.tables["history"]
outbox: Table = SQLModel.metadata.tables["outbox"]
deliveries: Table = SQLModel.metadata.tables["deliveries"]
timers: Table = SQLModel.metadata.tables["timers"]
definitions: Table = SQLModel.metadata.tables["definitions"]
tokens: Table = SQLModel.metadata.tables["tokens"]
web_sessions: Table = SQLModel.metadata.tables["web_sessions"]
public_ratings: Table = SQLModel.metadata.tables["public_ratings"]
duty_records: Table = SQLModel.metadata.tables["duty_records"]
duty_recomputes: Table = SQLModel.metadata.tables["duty_recomputes"]
