"""`run`, `stop`, `worker` and `demo`: executing items. Heavy modules are imported inside commands."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from agentsprint.cli.context import console, err, fail, real_console, settings_or_exit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from agentsprint.config import Settings
    from agentsprint.runner.demo import DemoResult
    from agentsprint.runner.service import RunReport

app = typer.Typer(help="Execute backlog items with agents.")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _summary(report: RunReport, shown: list[str], out: Console) -> None:
    from rich.table import Table

    from agentsprint.runner.selection import skipped_line

    for warning in report.warnings:
        if warning not in shown:  # start-up warnings were printed when the run started
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if report.skipped:
        out.print(skipped_line(report.skipped), highlight=False)
    if not report.results:
        out.print("nothing to run: no item can run now (add one with `agentsprint add`, or name items "
                      "with --item)")
        return
    table = Table(title=f"run {report.run_id}")
    table.add_column("item")
    table.add_column("status")
    table.add_column("note")
    for item_id, status in report.results.items():
        table.add_row(item_id, status, report.notes.get(item_id, ""))
    out.print(table)


@app.command("run")
def run_command(
    item: list[str] = typer.Option(None, "--item", help="Item id to run (repeatable)."),
    sprint: str = typer.Option(None, "--sprint", help="Run the items of this sprint."),
    parallel: int = typer.Option(None, "--parallel", min=1, max=64, help="Items at once."),
    ci: bool = typer.Option(False, "--ci", help="Plain log lines, no live display or colours (also when CI=true)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report here."),
    shadow: bool = typer.Option(False, "--shadow", help="Execute as usual but never merge or change item files."),
    submit: bool = typer.Option(False, "--submit", help="Only enqueue the items for `agentsprint worker`s; return."),
) -> None:
    """Execute items (default: every todo item) until done, awaiting review, escalated or failed."""
    from agentsprint.cli.progress import Board
    from agentsprint.runner.service import RunError, run_items
    from agentsprint.store.runlock import RunLocked

    if item and sprint:
        fail("give either --item or --sprint, not both")
    settings = settings_or_exit()
    if submit:
        _submit(settings, item or None, sprint, shadow, as_json)
        return
    from agentsprint.cli.ci_report import ci_requested, plain_console

    ci = ci_requested(ci)
    board = Board(console=plain_console(stderr=True) if ci else real_console(err),
                  live=not (ci or as_json) and err.is_terminal)
    shown: list[str] = []

    def notice(warning: str) -> None:
        shown.append(warning)
        board.console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)

    interrupt = threading.Event()
    try:
        with _interrupt_on_signals(interrupt), board:
            report = run_items(settings, item or None, sprint=sprint, parallel=parallel, shadow=shadow,
                               mode="ci" if ci else "normal", progress=board.update, notice=notice,
                               interrupt=interrupt)
    except (RunError, RunLocked) as exc:
        fail(str(exc))
    _ci_outputs(settings, report, sprint, junit, as_json)
    if not as_json and not interrupt.is_set():
        _summary(report, shown, plain_console() if ci else console)
    if interrupt.is_set():
        _leave_interrupted(report)
    raise typer.Exit(0 if report.ok else 1)


def _ci_outputs(settings: Settings, report: RunReport, sprint: str | None, junit: Path | None, as_json: bool) -> None:
    """The JUnit file, the JSON summary and the GitHub step summary, for those asked for."""
    from agentsprint.cli.step_summary import STEP_SUMMARY_ENV, append_step_summary

    if not (junit or as_json or os.environ.get(STEP_SUMMARY_ENV)):
        return
    from agentsprint.cli.ci_report import collect, summary_json, write_junit

    summary = collect(settings, report, sprint)
    if junit:
        write_junit(summary, junit)
    if as_json:
        typer.echo(json.dumps(summary_json(report, summary), indent=2))
    append_step_summary(summary)


@contextlib.contextmanager
def _interrupt_on_signals(interrupt: threading.Event) -> Iterator[None]:
    """SIGINT / SIGTERM set `interrupt` (the run freezes its items and returns); a second one exits now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        if interrupt.is_set():
            os._exit(EXIT_INTERRUPTED)  # the items stay resumable: their workflows are recorded
        interrupt.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _leave_interrupted(report: RunReport) -> NoReturn:
    """Say in one line what resumes, then exit 130 without waiting for steps still in flight.

    A step still running after the drain (a model call that has not answered) is abandoned with the
    process: its call stays charged at its reservation, settled when the item resumes.
    """
    import logging

    logging.getLogger("dbos").disabled = True  # a step ending after shutdown can no longer be recorded
    count = len(report.interrupted)
    err.print(f"interrupted: {count} item{'s' if count != 1 else ''} will resume with `agentsprint run`",
              highlight=False, markup=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _submit(settings: Settings, items: list[str] | None, sprint: str | None, shadow: bool, as_json: bool) -> None:
    """Enqueue for the workers and print what was submitted and what was skipped."""
    from agentsprint.runner.selection import RunError
    from agentsprint.runner.submission import submit

    try:
        found = submit(settings, items, sprint=sprint, shadow=shadow)
    except RunError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"run_id": found.run_id, "submitted": found.submitted, "skipped": found.skipped},
                              indent=2))
        return
    console.print(f"run {found.run_id}: submitted {len(found.submitted)} item(s) to the queue "
                  f"{', '.join(found.submitted) or '(none)'}; `agentsprint worker` processes execute them")
    for item_id, why in found.skipped.items():
        console.print(f"  skipped {item_id}: {why}")


@app.command("stop")
def stop_command(as_name: str = typer.Option(None, "--as", metavar="NAME",
                                             help="Record the stop under this name instead of your git identity.")
                 ) -> None:
    """Kill switch: every running item freezes at its next step, work committed; `run` resumes it."""
    from agentsprint.runner.control import stop_all

    stopped = stop_all(settings_or_exit(), who=as_name)
    if stopped:
        console.print(f"stopped {len(stopped)} item(s): {', '.join(stopped)} (resume with: agentsprint run)")
    else:
        console.print("nothing was running")


@app.command("worker")
def worker_command(
    parallel: int = typer.Option(None, "--parallel", min=1, max=64, help="Items this worker runs at once."),
    idle_exit: float = typer.Option(0.0, "--idle-exit", help="Exit after this many idle seconds (0 = never)."),
    drain: float = typer.Option(20.0, "--drain", min=0, help="On SIGTERM, seconds running items get to finish."),
) -> None:
    """Serve the run queue (several workers on several machines share one PostgreSQL database)."""
    from agentsprint.runner.worker import serve

    serve(settings_or_exit(), parallel=parallel, idle_exit=idle_exit, drain=drain)


@app.command("demo")
def demo_command(
    directory: Path = typer.Option(None, "--dir", help="Where to create the sample (default: a new temp dir)."),
) -> None:
    """The whole flow offline: a sample repo with a real bug, a backlog, scripted models, one sprint."""
    from agentsprint.cli.progress import Board
    from agentsprint.runner.demo import default_dir, run_demo

    target = (directory or default_dir()).resolve()
    board = Board(console=real_console(err), live=err.is_terminal)
    try:
        with board:
            result = run_demo(target, progress=board.update)
    except FileExistsError as exc:
        fail(str(exc))
    _print_demo(result)
    raise typer.Exit(0 if result.as_designed else 1)


def _print_demo(result: DemoResult) -> None:
    root = result.root
    console.print(f"\n[bold]Demo sprint finished in {result.seconds:.1f} s[/bold] in {root}")
    for item_id, status in result.results.items():
        expected = result.expected.get(item_id)
        mark = "ok" if status == expected else f"expected {expected}"
        console.print(f"  {item_id}: {status} ({mark})")
    if result.sandbox == "none":
        console.print("Sandbox:       none: no usable bubblewrap here (apt-get install bubblewrap)")
    console.print(f"\nWorktrees:     {root / '.agentsprint' / 'worktrees'}")
    console.print(f"Review inbox:  cd {root} && agentsprint review list")
    console.print(f"Escalations:   cd {root} && agentsprint escalations list")
    console.print(f"Events:        {root / '.agentsprint' / 'agentsprint.db'} (tables events, model_calls, "
                  "item_transitions)")
