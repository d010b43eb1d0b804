"""xieshang (协商): a workflow engine for the consultation work of a consultative conference.

The supported surface is what ``__all__`` lists; every other module is internal (adapters reach
the engine's few shared helpers through :mod:`xieshang.shared`).

>>> from xieshang import Actor, Engine
"""

from . import cel_package  # noqa: F401  (first: loads cel without its shell)
from .calendar import Duration, parse_duration
from .compiler import CompiledWorkflow
from .definition import Definition
from .deployment import DeploymentConfig, DeploymentError, OrgConfig, load_deployment
from .duties import DutyRecord, DutyRules
from .duties_file import load_duties
from .errors import (
    CalendarError,
    CalendarFileError,
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    DefinitionError,
    DeliveryFailed,
    DutiesFileError,
    Forbidden,
    FunctionFailed,
    InvalidPayload,
    NotFound,
    Problem,
    SettingsError,
    StoreError,
    StoreUnavailable,
    TransitionNotAllowed,
    UnknownTrigger,
    Usage,
    XieshangError,
)
from .loading import load_definition
from .migration import MigrationPlan, MigrationReport
from .ports import (
    ActClause,
    Clock,
    DefinitionStore,
    FixedClock,
    HistoryStore,
    InstanceStore,
    PageCursor,
    Query,
    QueryStore,
    Store,
    SystemClock,
    TimerStore,
)
from .reconcile import ReconcileReport
from .records import SYSTEM, Actor, Commit, EventRecord, HistoryEntry, Instance, TimerRecord
from .registry import Registry
from .runtime import Availability, Engine, Page, TickReport
from .schedules import CalendarChain, YearSchedule, parse_calendar_file

__all__ = [
    "SYSTEM",
    "ActClause",
    "Actor",
    "Availability",
    "CalendarChain",
    "CalendarError",
    "CalendarFileError",
    "Clock",
    "CommandRefused",
    "Commit",
    "CompiledWorkflow",
    "ConcurrencyConflict",
    "ConflictCase",
    "Definition",
    "DefinitionError",
    "DefinitionStore",
    "DeliveryFailed",
    "DeploymentConfig",
    "DeploymentError",
    "Duration",
    "DutiesFileError",
    "DutyRecord",
    "DutyRules",
    "Engine",
    "EventRecord",
    "FixedClock",
    "Forbidden",
    "FunctionFailed",
    "HistoryEntry",
    "HistoryStore",
    "Instance",
    "InstanceStore",
    "InvalidPayload",
    "MigrationPlan",
    "MigrationReport",
    "NotFound",
    "OrgConfig",
    "Page",
    "PageCursor",
    "Problem",
    "Query",
    "QueryStore",
    "ReconcileReport",
    "Registry",
    "SettingsError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "TickReport",
    "TimerRecord",
    "TimerStore",
    "TransitionNotAllowed",
    "UnknownTrigger",
    "Usage",
    "XieshangError",
    "YearSchedule",
    "load_definition",
    "load_deployment",
    "load_duties",
    "parse_calendar_file",
    "parse_duration",
]
