"""The year's reports a 政协 office publishes, computed with SQL over the stored instances.

Every figure comes from the ``instances`` table (state, flags and the JSON ``data`` column) and,
for what happened on the way (filed, overdue, return requests), from the ``history`` table by
trigger: one query each, never a replay of histories. Rates are exact fractions, printed as a
percentage with one decimal (``docs/processes.md`` §11).

>>> from xieshang.adapters.sql import open_store
>>> store = open_store("sqlite:///city.db")          # doctest: +SKIP
>>> review_report(store, 2024).rates["filing_rate"].text   # doctest: +SKIP
'88.7%'
"""

from __future__ import annotations

from .appraisal import appraisal_report
from .command import register_cli
from .duties import duties_report
from .handling import handling_report
from .key_proposals import key_proposals_report
from .kinds import KINDS, report
from .micro import micro_report
from .model import Line, Rate, Report
from .online import online_report
from .opinions import opinions_report
from .plan import plan_report
from .render import render_table
from .review import review_report

__all__ = [
    "KINDS",
    "Line",
    "Rate",
    "Report",
    "appraisal_report",
    "duties_report",
    "handling_report",
    "key_proposals_report",
    "micro_report",
    "online_report",
    "opinions_report",
    "plan_report",
    "register_cli",
    "render_table",
    "report",
    "review_report",
]
