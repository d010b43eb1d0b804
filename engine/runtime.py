"""The engine: one facade over the commands, reads, audit and timers of workflow instances.

A command is checked in a fixed order (instance, trigger, state, role, separation of duties,
payload, reason, guard), moved by the compiled machine, and written as one :class:`Commit`:
the instance row, one history row, its outbox events. A refused command writes nothing. Each
concern is a module of its own (commands, checks, steps, children, context, deadlines, timers,
reads, audit, reconcile); this one holds the engine's state and delegates to them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, cast

from . import audit, checks, commands, reads, timers
from .administration import Administration
from .checks import Availability
from .compiler import CompiledWorkflow
from .definition import Definition
from .deployed import deploy
from .deployment import DeploymentConfig
from .duties import DutyRules
from .errors import ConcurrencyConflict, ConflictCase, NotFound, Usage
from .inputs import input_errors, refuse_bad_id, refuse_bad_input
from .loading import compile_definition
from .ports import Clock, Query, Store, SystemClock
from .reads import Page
from .reconcile import ReconcileReport, reconcile
from .records import Actor, HistoryEntry, Instance, TimerRecord, canonical_json
from .registry import Registry
from .rows import START
from .schedules import CalendarChain
from .subscribers import AnnouncingStore, Subscriber, Subscribers
from .timers import TickReport

__all__ = ["Availability", "Engine", "Page", "TickReport"]


class Engine(Administration):
    """Runs workflow instances over a store.

    Args:
        store: where instances, history and the outbox live (in-memory, SQLite, PostgreSQL).
        registry: the compiled workflows (``xieshang.workflows.bundled()`` for the built-in ones).
        clock: where time comes from; ``SystemClock()`` by default.
        ids: makes new instance ids; uuid4 hex by default.
        deployment: names this deployment in the ``source`` of events.
        calendar: the deployment's working-day calendar (its calendar file over the official
            table); the official table, then provisional statutory holidays, when None.
        pins: per org, the version of a workflow its new instances start on
            (``{"guiyang": {"proposal": 2}}``); the newest loaded version otherwise.
        duties: the members' duty rules (see ``docs/duties.md``): each step's duty records are
            written in its transaction; None writes none.
        deployment_config: the deployment's settings file (:func:`xieshang.load_deployment`):
            each org's workflows, versions and params (see ``docs/deployment.md``).
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock | None = None,
        *,
        ids: Callable[[], str] | None = None,
        deployment: str = "default",
        calendar: CalendarChain | None = None,
        pins: Mapping[str, Mapping[str, int]] | None = None,
        duties: DutyRules | None = None,
        deployment_config: DeploymentConfig | None = None,
    ) -> None:
        if deployment_config is not None:  # each org's variants, the pins merged in
            registry = deploy(registry, deployment_config, pins)
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self.deployment = deployment
        self.calendar = calendar if calendar is not None else CalendarChain()
        self.pins = {org: dict(by_wf) for org, by_wf in (pins or {}).items()}
        self.duties = duties  # the members' duty rules; None: no duty records are written
        self._functions: dict[str, dict[str, Callable[..., Any]]] = {}
        self._saved_definitions: set[str] = set()
        self._subscribers: Subscribers | None = None

    @contextlib.contextmanager
    def unit_of_work(self, connection: Any) -> Iterator[Engine]:
        """This engine inside a transaction the host owns, for a ``with`` block.

        ``connection`` is the host's, inside its transaction, on the store's database: a
        SQLAlchemy ``Connection`` or ``Session``, a ``psycopg`` or a ``sqlite3`` connection. The
        engine yielded runs every command and read on it: what it starts and fires (instance
        rows, history, ledger, outbox, timers) commits with the host's own rows when the host
        commits, and is gone when the host rolls back. Each command runs under a savepoint, so a
        refused one leaves the host's transaction usable. Nothing is committed by the engine,
        and its events reach the outbox only if the host commits. After the block the yielded
        engine refuses to run.

        A host on another database cannot share a transaction: it records a ``command_id`` in
        its own transaction, then calls ``start``/``fire`` with it until one succeeds (a retry
        with the same id returns the first result and writes nothing).

        Raises:
            Usage: the store cannot join a host's transaction (the in-memory store), or
                ``connection`` is not a connection inside a transaction on the store's database.
        """
        bind = getattr(self.store, "bind", None)
        if bind is None:
            raise Usage(
                f"{type(self.store).__name__} cannot join a host's transaction: a unit of work "
                "needs the SQL store (SQLite or PostgreSQL)",
                option="connection",
            )
        store = bind(connection)
        bound = Engine(
            store,
            self.registry,
            self.clock,
            ids=self._ids,
            deployment=self.deployment,
            calendar=self.calendar,
            pins=self.pins,
        )
        bound._functions = self._functions
        try:
            yield bound
        finally:
            store.close()  # lets go of the host's connection, which stays open

    # -- commands ----------------------------------------------------------------------------

    def start(
        self,
        workflow: str,
        data: Mapping[str, Any] | None,
        actor: Actor,
        *,
        org: str | None = None,
        command_id: str | None = None,
        parent_id: str | None = None,
        unit: str | None = None,
    ) -> Instance:
        """Start an instance of ``workflow`` in its initial state; returns it as ``actor`` reads
        it (see :meth:`get`; only public fields if its ``read:`` rules give ``actor`` less).

        ``command_id`` makes the call idempotent: a retry with the same id and the same request
        (workflow, org, data) returns the instance its first call created and writes nothing
        (the id is stored with the history row, in the same transaction). The same id with
        another request is a ConcurrencyConflict (``case`` ``command-used``) naming what
        differs. A host on another database can record the id in its own transaction first,
        then call again until it succeeds.

        Raises:
            NotFound: no such workflow.
            Forbidden: the actor may not start it, or acts for another org.
            InvalidPayload: ``data`` is not a mapping, holds what no store keeps (NUL, NaN,
                nesting deeper than 32 levels ...) or does not match the workflow's data
                fields (all errors listed).
            ConcurrencyConflict: ``command_id`` was used for another request.
            Usage: an argument of the wrong type.
        """
        refuse_bad_id("workflow", workflow, option="workflow")
        values = refuse_bad_input(f"data of {workflow!r}", data, actor)
        if command_id is not None:
            refuse_bad_id("command", command_id, option="command_id")
        if org is not None:
            refuse_bad_id("org", org, option="org")
        org = org or actor.org or ""
        request: dict[str, Any] = {"instance_id": None, "trigger": START, "payload": values}
        request |= {"workflow": workflow, "org": org}
        if command_id is not None:
            done = self.store.find_command(command_id)
            if done is not None:
                return reads.as_read(self, self._retried(done, None, request), actor)
        try:
            started = commands.start(
                self,
                workflow,
                values,
                actor,
                org,
                command_id=command_id,
                parent_id=parent_id,
                unit=unit,
            )
        except ConcurrencyConflict as e:
            started = self._retried(self._command_race(e, command_id), None, request)
        return reads.as_read(self, started, actor)

    def fire(
        self,
        instance_id: str,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        command_id: str | None = None,
    ) -> Instance:
        """Fire ``trigger`` on an instance as ``actor``; returns the instance after the step, as
        ``actor`` reads it then (see :meth:`get`; only public fields if it reads it no more).

        Checks, in order: what the command carries can be stored (no NUL, NaN, nesting deeper
        than 32 levels ...), the instance exists (and belongs to the actor's org), the trigger
        exists, it can fire from the current state, the actor has an allowed role, separation
        of duties, the payload, the reason, the guard. Then the step is written in one
        transaction.

        ``command_id`` makes the call idempotent: a retry with the same id and the same request
        (instance, trigger, payload as validated, reason) returns the instance as that step
        left it and writes nothing; the same id with another request is a ConcurrencyConflict
        (``case`` ``command-used``) naming the row it was used for and what differs.

        Raises:
            NotFound: no such instance, another org's, or one the actor may not read (the same
                answer for all three); nothing was written or emitted.
            UnknownTrigger, TransitionNotAllowed, Forbidden, InvalidPayload:
                the command was refused; nothing was written or emitted.
            ConcurrencyConflict: ``expected_version`` did not match, another writer won, or
                ``command_id`` was used for another request.
            Usage: an argument of the wrong type.
        """
        refuse_bad_id("instance", instance_id, option="instance_id")
        refuse_bad_id("trigger", trigger, option="trigger")
        values = refuse_bad_input(
            f"payload of {trigger!r}", payload, actor, reason=reason, trigger=trigger
        )
        request: dict[str, Any] = {"instance_id": instance_id, "trigger": trigger}
        request |= {"payload": values, "reason": reason}
        if command_id is not None:
            refuse_bad_id("command", command_id, option="command_id")
            done = self.store.find_command(command_id)
            if done is not None:
                return reads.as_read(self, self._retried(done, instance_id, request), actor)
        known: int | None = None  # the level the actor reads the result at, if the step kept it
        try:  # an instance the actor may not read is refused as missing, before anything else
            moved, known = commands.fire(
                self,
                instance_id,
                trigger,
                actor,
                values,
                reason=reason,
                expected_version=expected_version,
                command_id=command_id,
            )
        except ConcurrencyConflict as e:
            moved = self._retried(self._command_race(e, command_id), instance_id, request)
        return reads.as_read(self, moved, actor, known=known)

    def _command_race(self, error: ConcurrencyConflict, command_id: str | None) -> HistoryEntry:
        """The row of the command that took ``command_id`` first; ``error`` again if none."""
        if command_id is None or error.case is not ConflictCase.COMMAND_USED:
            raise error
        done = self.store.find_command(command_id)
        if done is None:
            raise error
        return done

    def _retried(
        self, row: HistoryEntry, instance_id: str | None, request: dict[str, Any]
    ) -> Instance:
        """The result of the command of ``row``, retried; a conflict if the request differs."""
        differs = commands.request_differs(self, row, **request)
        if differs is not None:
            raise ConcurrencyConflict(
                row.instance_id, None, row.seq, case=ConflictCase.COMMAND_USED, differs=differs
            )
        return audit.result_of(self, row, instance_id, row.trigger)

    def available(self, instance_id: str, actor: Actor) -> list[Availability]:
        """Every trigger that can fire from the current state, and whether ``actor`` may fire it.

        The payload is unknown: a trigger with a required payload field, or whose guard reads
        the payload, is reported as ``needs_payload`` (with its JSON Schema), never as allowed;
        every check that does not read the payload (role, unit, separation of duties, a guard
        over the data) is judged now.

        Raises:
            NotFound: no such instance, one of another org than ``actor``'s, or one it may not
                read (the same answer for all three).
        """
        return checks.available(self, reads.readable(self, instance_id, actor), actor)

    def subscribe(
        self, fn: Subscriber, *, types: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``fn`` with each event (a CloudEvent dict) of every step this engine commits,
        after the commit, in order (only ``types``, if given); returns its unsubscribe. One that
        raises is logged and undoes nothing; in-process, at most once (see
        :mod:`xieshang.subscribers`).

        Raises:
            Usage: ``fn`` is not callable, or ``types`` is not a list of event types.
        """
        subscribers = self._subscribers or Subscribers()
        unsubscribe = subscribers.add(fn, types)
        if self._subscribers is None:
            self._subscribers = subscribers
            self.store = cast(Store, AnnouncingStore(self.store, subscribers))
        return unsubscribe

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str, actor: Actor | None = None, *, fresh: bool = False) -> Instance:
        """The instance as stored; as ``actor`` sees it when one is given (its ``read:`` rules:
        only public fields below the ``data`` level).

        Raises:
            NotFound: no such instance, another org's, or one the actor may not read (the same
                answer for all three).
        """
        return reads.get(self, instance_id, actor, fresh=fresh)

    def history(self, instance_id: str, actor: Actor | None = None) -> list[HistoryEntry]:
        """The instance's history, oldest first; the first entry is its creation. As ``actor``
        sees it when one is given: internal rows only at the ``internal`` level, payloads cut
        to public fields below ``data``.

        Raises:
            NotFound: as for :meth:`get`.
        """
        return reads.history(self, instance_id, actor)

    def children(self, instance_id: str, actor: Actor | None = None) -> list[Instance]:
        """The child instances of an instance (one per handling unit, say), oldest first; with
        ``actor``, only the children it may read, as :meth:`get` shows them.

        Raises:
            NotFound: as for :meth:`get` (of the parent).
        """
        return reads.children(self, instance_id, actor)

    def query(
        self, query: Query | None = None, *, actor: Actor | None = None, **criteria: Any
    ) -> Page:
        """Instances matching ``query`` (or keyword criteria of :class:`Query`), one page.

        With ``actor``, only what it may read (filtered by the store, before paging: a page is
        full whenever more readable instances follow), each as :meth:`get` would show it.
        With ``actionable_by`` (an inbox), only what that actor may act on now, read as it
        reads; the page's ``triggers`` name what it may fire on each. Pass a page's
        ``next_cursor`` as ``after`` for the next page.

        Raises:
            Usage: a keyword that is not a criterion of :class:`Query`, a criterion holding
                what no store keeps (a NUL character ...), or an ``actor`` other than
                ``actionable_by``.
        """
        named = {f.name: getattr(query, f.name) for f in fields(query)} if query else criteria
        internal = ("readers", "after", "acts", "actionable_by")
        shown = {k: v for k, v in named.items() if k not in internal}
        errors = input_errors(shown) + input_errors(list(named.get("after") or ()), "after")
        if errors:
            lines = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
            raise Usage(f"invalid query: {lines}", "criteria", errors=errors)
        return reads.query(self, query, actor, criteria)

    def level(self, instance: Instance, actor: Actor | None) -> int:
        """How far ``actor`` may read ``instance``: 0 not at all, then see, data, internal."""
        return reads.level(self, instance, actor)

    def rebuild_readers(self, instance_id: str | None = None) -> int:
        """Write the reader principals of one instance, or of all, from their definitions (for
        instances stored before read scopes existed, or after a definition's rules changed in
        place). Returns how many instances' readers were rewritten."""
        return reads.rebuild_readers(self, instance_id)

    # -- audit -------------------------------------------------------------------------------

    def replay(self, instance_id: str) -> Instance:
        """Re-run the stored history through the pinned definition; returns the rebuilt instance.

        Raises:
            XieshangError: when the history cannot be re-run (a step its definition refuses).
        """
        rows = self.store.history(refuse_bad_id("instance", instance_id, option="instance_id"))
        if not rows:
            raise NotFound("instance", instance_id)
        return audit.replay_rows(self, rows)

    def verify(
        self,
        instance_id: str | None = None,
        *,
        checkpoints: Iterable[Mapping[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """Check the hash chain and the replay of one instance, or of all; for all, also the
        store-wide ledger against the history and against verified ``checkpoints``.

        Returns:
            One problem dict per broken instance (``instance_id``, ``seq``, ``kind``,
            ``message``), then the ledger's findings (with their ``position``) for instances
            not already reported; an empty list when everything verifies.
        """
        if instance_id is not None:
            refuse_bad_id("instance", instance_id, option="instance_id")
        return audit.verify(self, instance_id, checkpoints)

    # -- time --------------------------------------------------------------------------------

    def use_calendar(self, calendar: CalendarChain) -> None:
        """Count working days on ``calendar`` from now on (a calendar file that was edited);
        then :meth:`reconcile_calendar` moves what was counted on the old one."""
        self.calendar = calendar
        self._functions.clear()

    def reconcile_calendar(
        self, now: datetime | None = None, *, dry_run: bool = False
    ) -> ReconcileReport:
        """Move the pending deadlines and timers of open instances that were counted on
        calendar data that has since changed (a provisional year now in the deployment's file
        or the official table): one audited ``calendar_reconcile`` row and one
        ``instance.deadline_changed`` event per instance. What already fired stays.
        """
        return reconcile(self, now, dry_run=dry_run)

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> TickReport:
        """Fire every timer due up to ``now`` (the clock's time by default).

        A timer fires its trigger as the ``system`` actor through the normal checked and audited
        command path; a deadline marks the instance overdue (one history row and one
        ``xieshang.instance.overdue`` event, once); a reminder writes one internal ``remind``
        history row (state, data and deadline unchanged) and its ``xieshang.instance.reminder``
        event. Safe to run from many processes at once: each timer is consumed in the
        same transaction as its effect, so it acts exactly once.
        """
        return timers.tick(self, now or self.clock.now(), limit)

    # -- what the engine's modules share -------------------------------------------------------

    def _load(
        self, instance_id: str, actor: Actor | None, *, fresh: bool = False, shared: bool = False
    ) -> Instance:
        """The stored instance; NotFound when there is none or it is another org's. With
        ``shared`` the caller changes nothing in it: a store that holds instances as objects
        (``load_shared``) may then give its own rather than a copy."""
        refuse_bad_id("instance", instance_id, option="instance_id")
        own = getattr(self.store, "load_shared", None) if shared and not fresh else None
        instance = (
            own(instance_id) if own is not None else self.store.load(instance_id, fresh=fresh)
        )
        if instance is None or (
            actor is not None and actor.org is not None and actor.org != instance.org
        ):
            raise NotFound("instance", instance_id)
        return instance

    def _workflow_of(self, instance: Instance) -> CompiledWorkflow:
        return self._workflow_by_hash(instance.definition_hash)

    def _workflow_by_hash(self, content_hash: str) -> CompiledWorkflow:
        """The definition pinned by ``content_hash``: registered, or compiled from the store."""
        wf = self.registry.by_hash(content_hash)
        if wf is not None:
            return wf
        body = self.store.load_definition(content_hash)
        if body is None:
            raise NotFound("definition", content_hash, allowed=[w.hash for w in self.registry])
        wf = compile_definition(Definition.model_validate(json.loads(body)))
        self.registry.add(wf, latest=False)
        return wf

    def _remember_definition(self, wf: CompiledWorkflow) -> None:
        """Store ``wf``'s definition by its hash, once, so its instances can always be replayed."""
        if wf.hash not in self._saved_definitions:
            self.store.save_definition(
                wf.hash, wf.id, wf.definition.version, canonical_json(wf.definition.to_json())
            )
            self._saved_definitions.add(wf.hash)

    def _replay_rows(self, rows: list[HistoryEntry]) -> Instance:
        return audit.replay_rows(self, rows)

    def _verify_one(self, instance_id: str) -> dict[str, Any] | None:
        return audit.verify_one(self, instance_id)

    def _run_timer(self, timer: TimerRecord, now: datetime) -> None:
        timers.run_timer(self, timer, now)
