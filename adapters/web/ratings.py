"""Public ratings (网民满意度): one per browser per proposal, limited per client address.

A rating is a row of ``public_ratings`` and, in the same transaction, a CloudEvent in the
outbox (``xieshang.proposal.public_rated``), so the relay delivers it like any step's event.
The browser is named by a random cookie id, the client by a hash of its address; neither leaves
the database. The limit counts the ratings recorded from one address in the last window, so it
holds across server processes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from xieshang import EventRecord, Instance, InvalidPayload
from xieshang.adapters.reports.labels import SATISFACTION_ZH
from xieshang.adapters.sql.tables import outbox, public_ratings
from xieshang.shared import iso

__all__ = [
    "EVENT_TYPE",
    "OUTBOX_SUFFIX",
    "RATINGS",
    "MemoryRatings",
    "RatingLimit",
    "RatingRefused",
    "RatingStore",
    "SQLRatings",
    "rating_event",
]

EVENT_TYPE = "xieshang.proposal.public_rated"
OUTBOX_SUFFIX = "#public_rating"  # the outbox key of a proposal's ratings: its id and this
RATINGS = SATISFACTION_ZH


@dataclass(frozen=True, slots=True)
class RatingLimit:
    """At most ``count`` ratings from one client address in ``seconds``."""

    count: int = 20
    seconds: int = 3600


class RatingRefused(Exception):
    """A rating not recorded: ``code`` is ``already-rated`` or ``rate-limited``; ``message`` is
    what the page shows (Chinese first)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _client(address: str) -> str:
    return hashlib.sha256(b"client:" + address.encode()).hexdigest()


def _check(rating: str) -> None:
    if rating not in RATINGS:
        raise InvalidPayload(
            "public rating",
            [
                {
                    "field": "rating",
                    "error": f"expected one of {', '.join(RATINGS)}",
                    "got": repr(rating),
                    "allowed": list(RATINGS),
                }
            ],
        )


def rating_event(instance: Instance, rating: str, at: datetime, deployment: str) -> EventRecord:
    """The CloudEvent of a public rating of ``instance`` (no browser or address in it)."""
    event_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/xieshang/{deployment}/{instance.org}/{instance.workflow}",
        "type": EVENT_TYPE,
        "subject": instance.id,
        "time": iso(at),
        "datacontenttype": "application/json",
        "sequence": f"{instance.version:012d}",
        "data": {
            "workflow": instance.workflow,
            "org": instance.org,
            "number": instance.data.get("number"),
            "rating": rating,
        },
    }
    # the outbox row is keyed apart from the proposal's own steps: no history row announces a
    # rating, so the audit (which holds each instance's events to its rows) does not see it,
    # and the relay orders the ratings of a proposal among themselves
    key = f"{instance.id}{OUTBOX_SUFFIX}"
    return EventRecord(event_id, key, instance.version, EVENT_TYPE, instance.org, body)


def _refused_duplicate() -> RatingRefused:
    return RatingRefused(
        "already-rated", "本浏览器已评价过这件提案 / This browser has already rated this proposal"
    )


def _refused_limit(limit: RatingLimit) -> RatingRefused:
    minutes = max(1, limit.seconds // 60)
    return RatingRefused(
        "rate-limited",
        f"评价过于频繁：每个地址 {minutes} 分钟内最多 {limit.count} 次，请稍后再试 / "
        f"Too many ratings from this address (at most {limit.count} in {minutes} minutes)",
    )


class RatingStore(Protocol):
    """Where ratings are recorded."""

    limit: RatingLimit

    def rate(self, instance: Instance, browser: str, address: str, rating: str) -> None:
        """Record ``rating`` of ``instance`` by ``browser`` from ``address``.

        Raises:
            InvalidPayload: ``rating`` is not one of :data:`RATINGS`.
            RatingRefused: this browser rated it before, or the address is over its limit.
        """

    def rated(self, browser: str, instance_ids: list[str]) -> set[str]:
        """Which of ``instance_ids`` this browser has rated."""

    def counts(self, instance_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per instance, how many ratings of each kind."""


class MemoryRatings:
    """Ratings in a list, events kept in :attr:`events` (for tests and embedding)."""

    def __init__(self, limit: RatingLimit = RatingLimit(), deployment: str = "default") -> None:
        self.limit = limit
        self.deployment = deployment
        self.rows: list[tuple[str, str, str, str, datetime]] = []  # instance, browser, client
        self.events: list[EventRecord] = []
        self._lock = threading.Lock()

    def rate(self, instance: Instance, browser: str, address: str, rating: str) -> None:
        _check(rating)
        now = datetime.now(UTC)
        client = _client(address)
        with self._lock:
            if any(r[0] == instance.id and r[1] == browser for r in self.rows):
                raise _refused_duplicate()
            since = now - timedelta(seconds=self.limit.seconds)
            if sum(1 for r in self.rows if r[2] == client and r[4] > since) >= self.limit.count:
                raise _refused_limit(self.limit)
            self.rows.append((instance.id, browser, client, rating, now))
            self.events.append(rating_event(instance, rating, now, self.deployment))

    def rated(self, browser: str, instance_ids: list[str]) -> set[str]:
        wanted = set(instance_ids)
        return {r[0] for r in self.rows if r[1] == browser and r[0] in wanted}

    def counts(self, instance_ids: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {i: {} for i in instance_ids}
        for r in self.rows:
            if r[0] in out:
                out[r[0]][r[3]] = out[r[0]].get(r[3], 0) + 1
        return out


class SQLRatings:
    """Ratings in ``public_ratings``, each with its outbox event in one transaction."""

    def __init__(
        self, engine: sa.Engine, limit: RatingLimit = RatingLimit(), deployment: str = "default"
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.deployment = deployment

    def rate(self, instance: Instance, browser: str, address: str, rating: str) -> None:
        _check(rating)
        now = datetime.now(UTC)
        client = _client(address)
        r = public_ratings
        event = rating_event(instance, rating, now, self.deployment)
        since = iso(now - timedelta(seconds=self.limit.seconds))
        try:
            with self.engine.begin() as conn:
                seen = conn.execute(
                    sa.select(r.c.id).where(r.c.instance_id == instance.id, r.c.browser == browser)
                ).first()
                if seen is not None:
                    raise _refused_duplicate()
                recent = conn.execute(
                    sa.select(sa.func.count()).where(r.c.client == client, r.c.created_at > since)
                ).scalar_one()
                if recent >= self.limit.count:
                    raise _refused_limit(self.limit)
                conn.execute(
                    r.insert().values(
                        id=event.id,
                        org=instance.org,
                        instance_id=instance.id,
                        browser=browser,
                        client=client,
                        rating=rating,
                        created_at=iso(now),
                    )
                )
                conn.execute(
                    outbox.insert().values(
                        event_id=event.id,
                        instance_id=event.instance_id,
                        seq=event.seq,
                        type=event.type,
                        org=event.org,
                        body=json.dumps(event.body, ensure_ascii=False, sort_keys=True),
                        created_at=iso(now),
                    )
                )
        except sa.exc.IntegrityError as e:  # the same browser, at the same moment elsewhere
            raise _refused_duplicate() from e

    def rated(self, browser: str, instance_ids: list[str]) -> set[str]:
        r = public_ratings
        q = sa.select(r.c.instance_id).where(
            r.c.browser == browser, r.c.instance_id.in_(instance_ids)
        )
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(q)}

    def counts(self, instance_ids: list[str]) -> dict[str, dict[str, int]]:
        r = public_ratings
        out: dict[str, dict[str, int]] = {i: {} for i in instance_ids}
        q = (
            sa.select(r.c.instance_id, r.c.rating, sa.func.count())
            .where(r.c.instance_id.in_(instance_ids))
            .group_by(r.c.instance_id, r.c.rating)
        )
        with self.engine.connect() as conn:
            for iid, rating, n in conn.execute(q):
                out[iid][rating] = n
        return out
