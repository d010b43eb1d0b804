"""What only an ``admin`` does to instances, as the engine's methods: redact history, move
instances to another version of their workflow, suspend and resume them, set a state by hand.
What each answers is the instance as :meth:`Engine.get` shows it to the admin after the step
(only its public fields where the read rules grant the admin less than ``data``), as for
commands.

Each writes audited history rows through the same commit path as a command; the modules that
do the work are :mod:`xieshang.redaction`, :mod:`xieshang.migration`,
:mod:`xieshang.suspension` and :mod:`xieshang.repair`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import migration, reads, redaction, repair, suspension
from .inputs import refuse_bad_id, refuse_bad_input
from .migration import MigrationReport
from .records import Actor, Instance

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["Administration"]


class Administration:
    """The engine's administrative methods (mixed into :class:`xieshang.Engine`)."""

    def redact(self, instance_id: str, fields: list[str], actor: Actor, reason: str) -> Instance:
        """Replace the payload ``fields`` of every history row of an instance by their digests,
        and the data fields derived from them by ``[redacted]``, in one audited row by an
        ``admin``; the hash chain, the ledger and the replay still verify.

        Raises:
            Forbidden: the actor is not an ``admin``.
            InvalidPayload: no fields or reason, or a field no row of the instance holds.
            CommandRefused: a row was written before fields were sealed, the replay would need
                a value, or a data field to clear is public.
            NotFound: no such instance.
        """
        engine = self._engine()
        done = redaction.redact(engine, instance_id, fields, actor, reason)
        return reads.as_read(engine, done, actor)

    # -- versions, suspension and repair ------------------------------------------------------

    def migrate(
        self,
        workflow: str,
        to_version: int,
        actor: Actor,
        *,
        org: str | None = None,
        state_map: Mapping[str, str] | None = None,
        set_exprs: Mapping[str, str] | None = None,
        dry_run: bool = False,
        reason: str | None = None,
    ) -> MigrationReport:
        """Move the open instances of ``workflow`` (of ``org``, or of all) to its version
        ``to_version``: each by one audited ``migrate`` row, whole or not at all; with
        ``dry_run``, only report. ``state_map`` renames states (``{"old": "new"}``);
        ``set_exprs`` gives data fields by CEL over the old ``data``, ``instance``, ``now`` and
        the new ``params`` (null removes the field).

        Returns:
            One plan per instance: what changes, or the problems that keep it where it is.

        Raises:
            Forbidden: the actor is not an ``admin``, or is one of an org and ``org`` names
                another (an org's admin migrates its own org's instances only).
            NotFound: no such workflow version loaded (naming those that are).
            Usage: a mapping to a state, or a ``set`` of a field, the new version does not
                have (naming those it has), or an expression that does not compile.
        """
        refuse_bad_id("workflow", workflow, option="workflow")
        if org is not None:
            refuse_bad_id("org", org, option="org")
        return migration.migrate(
            self._engine(),
            workflow,
            to_version,
            actor,
            org=org,
            state_map=state_map,
            set_exprs=set_exprs,
            dry_run=dry_run,
            reason=reason,
        )

    def suspend(self, instance_id: str, actor: Actor, reason: str) -> Instance:
        """Suspend an open instance: one audited row by an ``admin``; until :meth:`resume`,
        every command on it is refused and its timers hold.

        Raises:
            Forbidden: the actor is not an ``admin``.
            InvalidPayload: no reason.
            NotFound: no such instance.
            TransitionNotAllowed: it is final or suspended already.
        """
        refuse_bad_input("suspend", None, actor, reason=reason, trigger="suspend")
        engine = self._engine()
        done = suspension.suspend(engine, refuse_bad_id("instance", instance_id), actor, reason)
        return reads.as_read(engine, done, actor)

    def resume(self, instance_id: str, actor: Actor, reason: str) -> Instance:
        """Resume a suspended instance: its deadline and pending timers move by the time it was
        suspended (an overdue instance keeps its date).

        Raises:
            Forbidden: the actor is not an ``admin``.
            InvalidPayload: no reason.
            NotFound: no such instance.
            TransitionNotAllowed: it is not suspended.
        """
        refuse_bad_input("resume", None, actor, reason=reason, trigger="resume")
        engine = self._engine()
        done = suspension.resume(engine, refuse_bad_id("instance", instance_id), actor, reason)
        return reads.as_read(engine, done, actor)

    def set_state(self, instance_id: str, state: str, actor: Actor, reason: str) -> Instance:
        """Put an instance in ``state`` of its definition by hand (one audited row by an
        ``admin``), as if it had just entered it: for what no transition or migration covers.

        Raises:
            Forbidden: the actor is not an ``admin``.
            InvalidPayload: no reason, or no such state (naming the states).
            NotFound: no such instance.
            TransitionNotAllowed: it is in that state already, or suspended.
        """
        refuse_bad_input("set_state", None, actor, reason=reason, trigger="set_state")
        refuse_bad_id("state", state, option="state")
        engine = self._engine()
        iid = refuse_bad_id("instance", instance_id)
        done = repair.set_state(engine, iid, state, actor, reason)
        return reads.as_read(engine, done, actor)

    def _engine(self) -> Engine:
        from .runtime import Engine

        assert isinstance(self, Engine)
        return self
