"""PostgreSQL: a ledger entry is appended by one call, which takes the ledger's lock itself.

A step's ledger entry was appended by two statements: the transaction-scoped advisory lock
that orders the writers, then the insert that reads the head and chains the entry to it. The
lock was held from the first until the commit, including the time the client took to send the
second; on a busy machine a client that lost its processor there held every other writer up.
``xieshang_ledger_append`` takes the lock and inserts the entry in one call. Its insert runs
on a snapshot of its own, taken after the lock is had (a volatile function's statements each
take one), so it reads the head the last writer committed, as the second statement did.

Revision ID: 0016_ledger_append
Revises: 0015_readers_created
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_ledger_append"
down_revision: str | Sequence[str] | None = "0015_readers_created"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the canonical text of LedgerEntry.canonical, for texts that need no escaping in JSON (the
# caller sends only those here); the lock's key is the store's (Statements.ledger_lock)
CREATE = """
CREATE FUNCTION xieshang_ledger_append(p_instance text, p_seq integer, p_org text, p_row text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(8679604582553462130);
    INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash)
    SELECT t.position + 1, p_instance, p_seq, p_org, p_row, t.hash,
        encode(sha256(convert_to(
            '{"instance_id":"' || p_instance || '","org":"' || p_org
            || '","position":' || (t.position + 1) || ',"prev_hash":"' || t.hash
            || '","row_hash":"' || p_row || '","seq":' || p_seq || '}', 'UTF8')), 'hex')
    FROM (
        SELECT position, hash FROM (
            SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1
        ) h
        UNION ALL SELECT 0, ''
        ORDER BY position DESC LIMIT 1
    ) t;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION xieshang_ledger_append(text, integer, text, text)")
