"""The ``audit`` commands: ``verify``, ``readers``, ``redact``, ``keygen``, ``checkpoint``,
``export``, ``verify-bundle``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from xieshang import NotFound, Usage

from .app import AsActor, JsonFlag, _state, audit_app
from .output import _actor, _emit_json, _err, _out, _reporting


@audit_app.command()
def keygen(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The private key file to write (mode 0600).")
    ],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints: FILE and FILE.pub."""
    from xieshang.adapters.checkpoints import generate_key

    with _reporting(False):
        pub = generate_key(output)
        _out().print(Text(f"✓ private key {output} (keep it off the database server)"))
        _out().print(Text(f"✓ public key {pub} (give it to whoever verifies)"))


@audit_app.command()
def checkpoint(
    ctx: typer.Context,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The private key (else env XIESHANG_AUDIT_KEY)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign a statement of the ledger head, to keep outside the database."""
    from xieshang.adapters.checkpoints import (
        load_private_key,
        make_checkpoint,
        write_checkpoint,
    )

    with _reporting(as_json):
        key = load_private_key(key_file)
        engine = _state(ctx).engine()
        made = make_checkpoint(engine.store, key, engine.clock.now())
        if output is None:
            _emit_json(made)
            return
        write_checkpoint(made, output)
        st = made["statement"]
        if as_json:
            _emit_json({"file": str(output), **st})
        else:
            _out().print(Text(f"✓ checkpoint {output}: ledger position {st['position']}"))


@audit_app.command("export")
def export_command(
    ctx: typer.Context,
    org: Annotated[str, typer.Option("--org", help="The org whose instances to export.")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (China time).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle (.zip) to write.")],
    checkpoints: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="A checkpoint to include; repeatable.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write an auditor's bundle: an org's instances of a period, verifiable with no database."""
    from datetime import date

    from xieshang.adapters.bundle import export_bundle

    with _reporting(as_json):
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise Usage(
                f"--from {start!r} / --to {end!r}: dates are YYYY-MM-DD", "--from"
            ) from None
        engine = _state(ctx).engine()
        manifest = export_bundle(
            engine.store, org, first, last, output, checkpoints=checkpoints or [],
            now=engine.clock.now(),
        )  # fmt: skip
        if as_json:
            _emit_json({"file": str(output), **manifest})
        else:
            _out().print(
                Text(
                    f"✓ {output}: {manifest['instances']} instances, "
                    f"{manifest['history_rows']} history rows of {org}"
                )
            )


@audit_app.command("verify-bundle")
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle written by `audit export`.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The key its checkpoints were signed with.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify an auditor's bundle offline; exit 1 listing every finding."""
    from xieshang.adapters.bundle import verify_bundle

    with _reporting(as_json):
        result = verify_bundle(bundle, public_key)
        if as_json:
            _emit_json(result)
        else:
            for p in result["problems"]:
                seq = "-" if p["seq"] is None else p["seq"]
                where = f"{p['instance_id'] or 'bundle'} seq {seq}"
                if p.get("position") is not None:
                    where += f" position {p['position']}"
                _out().print(Text(f"{where}: {p['kind']}: {p['message']}"))
            if result["ok"]:
                _out().print(
                    Text(
                        f"✓ {result['instances']} instances verified, held to "
                        f"{result['checkpoints']} checkpoint(s)",
                        style="green",
                    )
                )
        if not result["ok"]:
            raise typer.Exit(1)


@audit_app.command()
def readers(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One instance; all when omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rewrite the reader principals of instances from their workflows' read: rules (after
    upgrading a database written before read scopes existed). A server already running keeps
    the readers it cached for an instance until that instance next moves: restart it after."""
    with _reporting(as_json):
        engine = _state(ctx).engine()
        changed = engine.rebuild_readers(instance_id)
        if as_json:
            _emit_json({"rewritten": changed})
        else:
            _out().print(Text(f"reader principals rewritten for {changed} instances"))


@audit_app.command()
def redact(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance.")],
    fields: Annotated[
        list[str], typer.Option("--field", help="A payload field to redact; repeatable.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the redaction row).")],
    actor: AsActor,
    as_json: JsonFlag = False,
) -> None:
    """Replace a personal value (a phone or ID card number) in an instance's history by its
    digest: every row holding the payload field, and the data derived from it. The chain, the
    ledger and the replay still verify; the redaction is itself a row. Needs the admin role."""
    with _reporting(as_json):
        engine = _state(ctx).engine()
        instance = engine.redact(instance_id, fields, _actor(actor), reason)
        row = engine.store.history(instance_id)[-1]
        if as_json:
            _emit_json({"instance": instance.to_dict(), "redaction": row.payload, "seq": row.seq})
        else:
            _out().print(
                Text(
                    f"✓ redacted {', '.join(row.payload['fields'])} in rows "
                    f"{', '.join(map(str, row.payload['rows']))}; data fields cleared: "
                    f"{', '.join(row.payload['data']) or 'none'} (row {row.seq})",
                    style="green",
                )
            )


@audit_app.command()
def verify(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One instance; all when omitted.")
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="A signed checkpoint to hold the ledger to; repeatable."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The key the checkpoints were signed with.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check hash chains, replays and the ledger; exit 1 listing every finding."""
    with _reporting(as_json):
        statements: list[dict[str, Any]] = []
        if checkpoints:
            from xieshang.adapters.checkpoints import load_public_key, read_checkpoint

            if public_key is None:
                raise Usage("--checkpoint needs --public-key FILE.pub to check it", "--public-key")
            key = load_public_key(public_key)
            statements = [read_checkpoint(cp, key) for cp in checkpoints]
        engine = _state(ctx).engine(reading=True)
        if instance_id is not None:
            if engine.store.load(instance_id) is None and not engine.store.history(instance_id):
                raise NotFound("instance", instance_id)
            checked = 1
        else:
            checked = sum(1 for _ in engine.store.instance_ids())
        problems = engine.verify(instance_id, checkpoints=statements)
        if as_json:
            _emit_json({"ok": not problems, "checked": checked, "problems": problems})
        elif problems:
            out = _out()
            for p in problems:
                seq = "-" if p["seq"] is None else p["seq"]
                where = f"{p['instance_id'] or 'ledger'} seq {seq}"
                if p.get("position") is not None:
                    where += f" position {p['position']}"
                out.print(Text(f"{where}: {p['kind']}: {p['message']}"))
            _err().print(
                Text(f"{len(problems)} of {checked} instances fail verification", style="red")
            )
        else:
            held = f", held to {len(statements)} checkpoint(s)" if statements else ""
            _out().print(
                Text(f"✓ {checked} instance{'s' * (checked != 1)} verified{held}", style="green")
            )
        if problems:
            raise typer.Exit(1)
