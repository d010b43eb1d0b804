"""A member's duty record for a year, read as an actor may read it.

Who reads a member's record: trusted callers (no actor) and the system; the member; and, for
the members of their own org, the actors holding a role of :data:`RECORD_READERS` (the office,
the special committees, the chairpersons' council, an administrator). Anyone else is answered
exactly as for a member with no record (``NotFound``), as reads of instances are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .duties import DutyRules
from .duties_audit import DutyStore, rules_of_year
from .duties_totals import MemberYear, count_year
from .errors import NotFound, Usage
from .records import SYSTEM, Actor

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["RECORD_READERS", "member_year"]

RECORD_READERS = frozenset({"cppcc_office", "special_committee", "chairpersons_council", "admin"})


def member_year(
    engine: Engine, member: str, year: int, actor: Actor | None = None
) -> tuple[MemberYear, DutyRules]:
    """``member``'s records of ``year`` with their totals, caps and quota shortfalls, and the
    rules they were counted under.

    Raises:
        NotFound: the member has no record that year and is not on the rules' roster, or
            ``actor`` may not read the member's record.
        Usage: the engine has no duty rules.
    """
    rules = rules_of_year(engine, year)
    if rules is None:
        raise Usage("this engine keeps no duty records: it was built without duty rules", "duties")
    store: DutyStore = engine.store  # type: ignore[assignment]  # stores that keep duties
    records = store.duty_records(year=year, member=member)
    if actor is not None and actor != SYSTEM and actor.id != member:
        if actor.roles.isdisjoint(RECORD_READERS):
            raise NotFound("member record", member)
        records = [r for r in records if actor.org is None or r.org == actor.org]
    if not records and member not in rules.file.members:
        raise NotFound("member record", member)
    return count_year(rules, year, records, members=[member])[member], rules
