"""xieshang (协商): a workflow engine for the consultation work of a consultative conference.

The supported surface is what ``__all__`` lists; every other module is internal.

>>> from xieshang import Actor, Engine
"""

from .calendar import Duration, parse_duration
from .compiler import CompiledWorkflow
from .definition import Definition
from .errors import (
    CalendarError,
    CalendarFileError,
    CommandRefused,
    ConcurrencyConflict,
    DefinitionError,
    Forbidden,
    FunctionFailed,
    InvalidPayload,
    NotFound,
    Problem,
    TransitionNotAllowed,
    UnknownTrigger,
    XieshangError,
)
from .loading import load_definition
from .ports import Clock, FixedClock, Query, Store, SystemClock
from .reconcile import ReconcileReport
from .records import SYSTEM, Actor, EventRecord, HistoryEntry, Instance
from .registry import Registry
from .runtime import Availability, Engine, Page
from .schedules import CalendarChain, YearSchedule, parse_calendar_file

__all__ = [
    "SYSTEM",
    "Actor",
    "Availability",
    "CalendarChain",
    "CalendarError",
    "CalendarFileError",
    "Clock",
    "CommandRefused",
    "CompiledWorkflow",
    "ConcurrencyConflict",
    "Definition",
    "DefinitionError",
    "Duration",
    "Engine",
    "EventRecord",
    "FixedClock",
    "Forbidden",
    "FunctionFailed",
    "HistoryEntry",
    "Instance",
    "InvalidPayload",
    "NotFound",
    "Page",
    "Problem",
    "Query",
    "ReconcileReport",
    "Registry",
    "Store",
    "SystemClock",
    "TransitionNotAllowed",
    "UnknownTrigger",
    "XieshangError",
    "YearSchedule",
    "load_definition",
    "parse_calendar_file",
    "parse_duration",
]
