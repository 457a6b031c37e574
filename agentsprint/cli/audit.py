"""`audit verify | export | show | anchor`: check, hand over and read the hash-chained event log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from agentsprint.cli.context import console, fail, settings_or_exit

app = typer.Typer(help="The tamper-evident event log: verify it, export it, read an item's history, anchor it.",
                  invoke_without_command=True)

ANCHORS_HELP = "Also check the anchors in this file (repeat the option); git notes are always checked."


@app.callback()
def _group(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _verdict_json(verdict: Any, anchor_count: int) -> dict[str, Any]:
    broken = verdict.broken
    return {"ok": broken is None, "checked": verdict.checked, "anchors": anchor_count,
            "head": {"seq": verdict.head_seq, "hash": verdict.head_hash},
            "broken": None if broken is None else {"seq": broken.seq, "at": broken.at, "kind": broken.kind,
                                                   "problem": broken.problem, "detail": broken.detail}}


@app.command("verify")
def verify_command(as_json: bool = typer.Option(False, "--json"),
                   anchor_files: list[Path] = typer.Option(None, "--anchors", metavar="FILE", help=ANCHORS_HELP)
                   ) -> None:
    """Recompute the chain: exit 0 when intact, 1 naming the first event that was tampered with."""
    from agentsprint.audit.anchors import AnchorError
    from agentsprint.audit.export import iso
    from agentsprint.audit.service import verify_project

    try:
        verdict, anchor_count = verify_project(settings_or_exit(), anchor_files or [])
    except AnchorError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(_verdict_json(verdict, anchor_count), indent=2))
    elif verdict.broken is None:
        typer.echo(f"chain intact: {verdict.checked} events, checked against {anchor_count} anchors")
    else:
        b = verdict.broken
        typer.echo(f"chain BROKEN at event #{b.seq} ({iso(b.at)}, {b.kind}): {b.problem}: {b.detail}")
        typer.echo(f"{verdict.checked} events verified before it")
    if not as_json:
        typer.echo(f"head: #{verdict.head_seq} {verdict.head_hash}")
    raise typer.Exit(0 if verdict.broken is None else 1)


def _since(text: str | None) -> float | None:
    import datetime as dt

    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since {text!r}: not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


@app.command("export")
def export_command(
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE", help="The JSON lines file to write."),
    since: str = typer.Option(None, "--since", metavar="DATE", help="Only events from this date (UTC) on."),
    item_id: str = typer.Option(None, "--item", metavar="ID", help="Only this item's events."),
    fmt: str = typer.Option("jsonl", "--format", metavar="FORMAT",
                             help="jsonl (events with their hashes) or otlp-json (the item runs' trace spans)."),
) -> None:
    """Write the events as JSON lines (each with its hash and the previous one), or the runs' spans as OTLP JSON."""
    from agentsprint.audit.service import export_otlp_json, export_project

    writers = {"jsonl": (export_project, "events"), "otlp-json": (export_otlp_json, "spans")}
    if fmt not in writers:
        fail(f"--format {fmt!r}: not supported (use jsonl or otlp-json)")
    if not output.parent.is_dir():
        fail(f"{output}: no such directory {output.parent}")
    write, what = writers[fmt]
    count = write(settings_or_exit(), output, _since(since), item_id.upper() if item_id else None)
    console.print(f"{count} {what} written to {output}")


@app.command("show")
def show_command(item_id: str) -> None:
    """One item's history: state changes, model and tool calls, gates and human decisions, and who did each."""
    from agentsprint.audit.service import timeline

    lines = timeline(settings_or_exit(), item_id.upper())
    if not lines:
        fail(f"{item_id.upper()}: no events recorded for this item", code=1)
    typer.echo("\n".join(lines))


@app.command("anchor")
def anchor_command(file: Path = typer.Option(None, "--file", metavar="FILE",
                                             help="Append to this file instead of a git note.")) -> None:
    """Write the chain head hash outside the database (a git note on HEAD, or a file)."""
    from agentsprint.audit.anchors import AnchorError
    from agentsprint.audit.service import anchor_project

    try:
        anchor, where = anchor_project(settings_or_exit(), file)
    except AnchorError as exc:
        fail(str(exc))
    typer.echo(f"anchored event #{anchor.seq} {anchor.hash} in {where}")
