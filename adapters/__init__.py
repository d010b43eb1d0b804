"""Adapters: everything that touches the outside world (stores, sinks, CLI, HTTP)."""
