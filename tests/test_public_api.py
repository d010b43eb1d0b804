"""The public surface is pinned: what each package exports, and what adapters may import.

A name added to or removed from an ``__all__`` is a change of the supported API: it is made
here on purpose, never by accident. Adapters reach the engine only through :mod:`xieshang`
and the helpers it shares with them (:mod:`xieshang.shared`); the engine imports no adapter;
only the compiler touches pytransitions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import xieshang
import xieshang.adapters.events
import xieshang.adapters.sql
import xieshang.shared
import xieshang.workflows

ROOT = Path(__file__).resolve().parent.parent

PINNED = {
    xieshang: [
        "SYSTEM", "ActClause", "Actor", "Availability", "CalendarChain", "CalendarError",
        "CalendarFileError", "Clock", "CommandRefused", "Commit",
        "CompiledWorkflow", "ConcurrencyConflict", "ConflictCase", "Definition",
        "DefinitionError", "DefinitionStore", "DeliveryFailed", "DeploymentConfig",
        "DeploymentError", "DutiesFileError", "Duration",
        "DutyRecord", "DutyRules", "Engine",
        "EventRecord", "FixedClock", "Forbidden", "FunctionFailed", "HistoryEntry",
        "HistoryStore", "Instance", "InstanceStore", "InvalidPayload", "MigrationPlan",
        "MigrationReport", "NotFound", "OrgConfig", "Page", "PageCursor", "Problem", "Query",
        "QueryStore",
        "ReconcileReport", "Registry",
        "SettingsError", "Store",
        "StoreError", "StoreUnavailable", "SystemClock",
        "TickReport", "TimerRecord", "TimerStore", "TransitionNotAllowed", "UnknownTrigger",
        "Usage", "XieshangError", "YearSchedule", "load_definition", "load_deployment",
        "load_duties",
        "parse_calendar_file",
        "parse_duration",
    ],
    xieshang.adapters.sql: [
        "SQLStore", "StoreError", "StoreUnavailable", "database_url", "engine_for", "open_store",
        "upgrade",
    ],
    xieshang.workflows: ["BUNDLED_DIR", "DUTIES_FILE", "bundled", "bundled_files",
                         "default_duties", "load_registry", "workflow_files"],
    xieshang.adapters.events: [
        "SIGNATURE_HEADER", "DeadLetter", "DeliveryFailed", "EventSettings", "EventSink",
        "JsonLinesSink", "RedisStreamSink", "Relay", "StreamConsumer", "SubscriberSink",
        "WebhookSink",
        "build_sinks", "encode", "register_cli", "sign", "verify",
    ],
    xieshang.shared: [
        "CHINA_TZ", "DATA_LEVEL", "DeployedRegistry", "DutyFile", "DutyRecompute", "DutyStore",
        "FieldSpec", "GENESIS", "IDENT",
        "LedgerEntry",
        "MAX_DEPTH", "MemberYear", "RECORD_READERS", "RecomputePlan", "Tracking", "add_workdays",
        "append_entries", "append_rows", "entry_orgs", "apply_recompute", "canonical_json",
        "compile_definition",
        "compile_duty_rules", "copy_json", "count_year", "deploy", "drift_message",
        "duties_problems",
        "field_errors", "input_errors", "iso", "member_year", "provisional_years", "read_yaml",
        "reader_principals", "recompute_plan", "rules_of_year", "schema_json", "svg_titles",
        "to_dot", "to_mermaid", "verify_ledger", "workflows_used", "year_of",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", list(PINNED), ids=[m.__name__ for m in PINNED])
def test_each_package_exports_exactly_its_pinned_names(module: object) -> None:
    """``__all__`` is the pinned list, and every name in it exists."""
    exported = module.__all__  # type: ignore[attr-defined]
    assert sorted(exported) == sorted(PINNED[module])  # type: ignore[index]
    assert len(set(exported)) == len(exported)
    assert all(hasattr(module, name) for name in exported)


def test_a_store_can_be_implemented_from_the_public_api_alone() -> None:
    """What the Store port's methods take and return is exported next to the port."""
    for name in ("Store", "Commit", "Instance", "HistoryEntry", "EventRecord", "TimerRecord",
                 "Query", "ConcurrencyConflict", "ConflictCase", "StoreError"):  # fmt: skip
        assert name in xieshang.__all__


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of each ``from X import`` / ``import X`` in a file."""
    package = {"engine": "xieshang", "adapters": "xieshang.adapters",
               "workflows": "xieshang.workflows"}[path.relative_to(ROOT).parts[0]]  # fmt: skip
    here = ".".join([package, *path.relative_to(ROOT).parts[1:-1]])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                found.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts)


def test_adapters_reach_the_engine_only_through_its_public_and_shared_modules() -> None:
    """An adapter imports ``xieshang`` or ``xieshang.shared``, never an engine module directly."""
    allowed = ("xieshang.adapters", "xieshang.workflows", "xieshang.shared")
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _files("adapters", "workflows")
        for line, module in _imports(path)
        if module.startswith("xieshang.") and not module.startswith(allowed)
    ]
    assert offenders == []


def test_the_engine_imports_no_adapter_and_only_the_compiler_imports_transitions() -> None:
    """Dependencies point inward; pytransitions stays behind the compiler."""
    offenders = []
    for path in _files("engine"):
        for line, module in _imports(path):
            if module.startswith(("xieshang.adapters", "xieshang.workflows")):
                offenders.append(f"{path.name}:{line}: {module}")
            if module.split(".")[0] == "transitions" and path.name != "compiler.py":
                offenders.append(f"{path.name}:{line}: {module}")
    assert offenders == []
