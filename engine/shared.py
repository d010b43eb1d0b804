"""The engine's helpers that adapters may use: one module, so what they lean on is deliberate.

The supported API is what :mod:`xieshang` exports. Adapters (the CLI, the HTTP API, the SQL
store, the relay, the reports) also need a few helpers of the engine's own: they import them
from here and from nowhere else inside the engine, so every such dependency is visible in one
place and an engine module can be rearranged without breaking an adapter (a test checks it).
"""

from __future__ import annotations

from .access import DATA as DATA_LEVEL
from .access import principals as reader_principals
from .calendar import CHINA_TZ, add_workdays
from .definition import IDENT
from .deployed import DeployedRegistry, deploy
from .deployment_checks import uses as workflows_used
from .diagram import schema_json, svg_titles, to_dot, to_mermaid
from .duties import DutyFile, year_of
from .duties import compile_rules as compile_duty_rules
from .duties_audit import (
    DutyRecompute,
    DutyStore,
    RecomputePlan,
    apply_recompute,
    recompute_plan,
    rules_of_year,
)
from .duties_file import duties_problems
from .duties_read import RECORD_READERS, member_year
from .duties_totals import MemberYear, count_year
from .fields import FieldSpec
from .inputs import MAX_DEPTH, input_errors
from .ledger import GENESIS, LedgerEntry, append_entries, append_rows, entry_orgs, verify_ledger
from .loading import compile_definition
from .pinning import drift_message
from .records import canonical_json, copy_json, iso
from .schedules import Tracking, provisional_years
from .schema_types import field_errors
from .yamlsafe import read_yaml

__all__ = [
    "CHINA_TZ",
    "DATA_LEVEL",
    "GENESIS",
    "IDENT",
    "MAX_DEPTH",
    "RECORD_READERS",
    "DeployedRegistry",
    "DutyFile",
    "DutyRecompute",
    "DutyStore",
    "FieldSpec",
    "LedgerEntry",
    "MemberYear",
    "RecomputePlan",
    "Tracking",
    "add_workdays",
    "append_entries",
    "append_rows",
    "apply_recompute",
    "canonical_json",
    "compile_definition",
    "compile_duty_rules",
    "copy_json",
    "count_year",
    "deploy",
    "drift_message",
    "duties_problems",
    "entry_orgs",
    "field_errors",
    "input_errors",
    "iso",
    "member_year",
    "provisional_years",
    "read_yaml",
    "reader_principals",
    "recompute_plan",
    "rules_of_year",
    "schema_json",
    "svg_titles",
    "to_dot",
    "to_mermaid",
    "verify_ledger",
    "workflows_used",
    "year_of",
]
