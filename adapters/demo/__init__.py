"""``xieshang demo``: a simulated year of the consultation work of a city 政协.

A fresh SQLite database, the bundled workflows and a simulated clock: the annual consultation
plan (51 topics in 5 categories) is collected, drafted, reviewed and approved; consultations are
held and their outcomes instructed and fed back; a few hundred proposals are reviewed and handled
by the city's departments (some units are released and replaced, some reply late, some replies
leave the proposer unsatisfied and are handled again); key proposals are selected from the
filed ones and supervised to their outcome; opinion reports are adopted and instructed; four
departments go through a democratic appraisal; residents' problems are consulted at members'
workstations (one escalated as a proposal now and then) and topics are consulted online. Every
step goes through the public :class:`~xieshang.Engine` API, the way an integrating system would
drive it. Then the year's reports are printed and the audit chain of every instance is verified.

Everything is derived from ``random.Random(seed)`` and a fixed clock, with deterministic instance
ids: the same seed gives the same database contents and the same reports.
"""

from __future__ import annotations

from .command import register_cli
from .run import DemoResult, run_demo

__all__ = ["DemoResult", "register_cli", "run_demo"]
