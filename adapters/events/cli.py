"""The relay's commands: ``xieshang relay`` and ``xieshang events list|retry``.

:func:`register_cli` adds them to the main ``xieshang`` app. The database is the one the main
app's ``--db`` / ``XIESHANG_DATABASE_URL`` names; the sinks come from :class:`EventSettings`.
Exit codes follow the main app: 0 done, 1 nothing to do it on (no such dead letter), 2 bad
settings.
"""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from xieshang import SettingsError, XieshangError
from xieshang.adapters.settings import command_database_url

from .relay import Relay
from .settings import EventSettings, build_sinks

__all__ = ["register_cli"]


def _event_settings() -> EventSettings:
    try:
        return EventSettings()
    except SettingsError as e:
        problems = "; ".join(
            f"XIESHANG_{str(err['field']).replace('.', '_').upper() or 'SETTINGS'}: {err['error']}"
            for err in e.errors
        )
        typer.echo(f"error: {problems}", err=True)
        raise typer.Exit(2) from None


def _relay(ctx: typer.Context, *, with_sinks: bool) -> Relay:
    settings = _event_settings()
    sinks = build_sinks(settings) if with_sinks else []
    try:
        return Relay(command_database_url(ctx), sinks, settings)
    except XieshangError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(2) from None


def register_cli(app: typer.Typer) -> None:
    """Add ``relay`` and the ``events`` group (``list``, ``retry``) to ``app``."""
    events = typer.Typer(help="Delivered, pending and dead-lettered events.", no_args_is_help=True)
    app.add_typer(events, name="events")

    @app.command("relay")
    def relay_command(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
        poll_interval: Annotated[
            float | None,
            typer.Option("--poll-interval", help="Seconds between passes when idle."),
        ] = None,
    ) -> None:
        """Deliver the outbox to the configured sinks until SIGTERM or SIGINT."""
        relay = _relay(ctx, with_sinks=True)
        if not relay.sinks:
            typer.echo(
                "error: no sink is configured; set XIESHANG_WEBHOOK_URLS (with "
                "XIESHANG_WEBHOOK_SECRET), XIESHANG_REDIS_URL or XIESHANG_JSONL_PATH",
                err=True,
            )
            raise typer.Exit(2)
        try:
            if once:
                typer.echo(f"delivered {relay.run_once()}")
                return
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
            typer.echo(f"relay: delivering to {', '.join(s.name for s in relay.sinks)}", err=True)
            try:
                relay.run_forever(stop, poll_interval)
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
            typer.echo("relay: stopped", err=True)
        finally:
            relay.close()

    @events.command("list")
    def list_command(
        ctx: typer.Context,
        failed: Annotated[
            bool, typer.Option("--failed", help="List the dead letters, one per event and sink.")
        ] = False,
        limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """Count deliveries per sink and status, or with --failed list the dead letters."""
        relay = _relay(ctx, with_sinks=False)
        try:
            if failed:
                dead = [d.to_dict() for d in relay.failed(limit)]
                if as_json:
                    typer.echo(json.dumps(dead, ensure_ascii=False, indent=2))
                for d in [] if as_json else dead:
                    typer.echo(
                        f"{d['event_id']}  {d['sink']}  {d['type']}  "
                        f"attempts={d['attempts']}  {d['last_error'] or ''}"
                    )
                return
            counts: list[dict[str, Any]] = relay.counts()
            if as_json:
                typer.echo(json.dumps(counts, ensure_ascii=False, indent=2))
            for c in [] if as_json else counts:
                typer.echo(f"{c['sink']}  {c['status']}  {c['count']}")
        finally:
            relay.close()

    @events.command("retry")
    def retry_command(
        ctx: typer.Context,
        event_id: Annotated[str, typer.Argument(help="The CloudEvent id of a dead letter.")],
        sink: Annotated[
            str | None, typer.Option("--sink", help="Only the dead delivery to this sink.")
        ] = None,
    ) -> None:
        """Make a dead letter pending again; the relay delivers it on its next pass."""
        relay = _relay(ctx, with_sinks=False)
        try:
            n = relay.retry(event_id, sink)
        except XieshangError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(1) from None
        finally:
            relay.close()
        typer.echo(f"re-driven {n} deliver{'y' if n == 1 else 'ies'} of {event_id}")
