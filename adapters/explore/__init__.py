"""Exploring a workflow before it runs: a bounded walk of the machine with generated payloads
and actors, what it could not reach and why, and a stateful test for the owner to keep."""

from .emit import emit_test, test_source
from .files import registry_for, workflow_of
from .findings import Finding, findings, graph_reachable
from .walk import Move, Walk, actor_for, walk

__all__ = [
    "Finding",
    "Move",
    "Walk",
    "actor_for",
    "emit_test",
    "findings",
    "graph_reachable",
    "registry_for",
    "test_source",
    "walk",
    "workflow_of",
]
