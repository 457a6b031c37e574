"""`agentsprint retro`: token ROI and the review bottleneck, in the terminal or exported as md/html/json/csv."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from agentsprint.cli.context import console, fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.config import Settings

app = typer.Typer()


@app.command("retro")
def retro_command(
    sprint: str = typer.Option(None, "--sprint", metavar="NAME",
                               help="The sprint's items (backlog/sprints/NAME.yml or the database)."),
    items: list[str] = typer.Option(None, "--item", metavar="ID", help="These items (repeat the option)."),
    since: str = typer.Option(None, "--since", metavar="DATE", help="What happened since this date (YYYY-MM-DD, UTC)."),
    trend: bool = typer.Option(False, "--trend", help="Headline figures per sprint side by side."),
    fmt: str = typer.Option(None, "--format", metavar="FORMAT",
                            help="md | html | json | csv (default: the terminal view)."),
    output: Path = typer.Option(None, "-o", "--output", metavar="FILE", help="Write the report to this file."),
) -> None:
    """The retro: findings, outcome, token ROI, handoffs, review bottleneck, reliability."""
    from agentsprint.retro.errors import RetroError

    try:
        _retro(sprint, items, since, trend, fmt, output)
    except RetroError as exc:
        fail(str(exc))


def _retro(sprint: str | None, items: list[str] | None, since: str | None, trend: bool, fmt: str | None,
           output: Path | None) -> None:
    from agentsprint.retro import service

    settings = settings_or_exit()
    chosen = service.format_for(fmt, str(output) if output else None)
    if trend:
        from agentsprint.retro.trend import make_trend

        report = make_trend(settings)
    else:
        report = service.make_report(settings, _forecasts(settings), sprint=sprint, items=items, since=since)
    _emit(report, chosen, output, trend)


def _forecasts(settings: Settings) -> dict[str, float]:
    """Planning's USD forecast of each backlog item: what the retro's forecast_error measures spend against."""
    from agentsprint.backlog import load_backlog
    from agentsprint.planning.inputs import usd_forecasts

    return usd_forecasts(settings, load_backlog(settings.backlog_dir).items)


def _emit(report: dict[str, object], fmt: str | None, output: Path | None, trend: bool) -> None:
    from agentsprint.retro import service

    if fmt is None:
        from agentsprint.retro.render_term import renderables, trend_table

        for shown in (trend_table(report) if trend else renderables(report)):
            console.print(shown)
        return
    text = service.render_trend(report, fmt) if trend else service.render(report, fmt)
    if output is None:
        typer.echo(text, nl=False)
        return
    _write(output, text)


def _write(output: Path, text: str) -> None:
    from agentsprint.backlog.files import atomic_write

    if not output.parent.is_dir():
        fail(f"-o {output}: folder {output.parent} does not exist")
    try:
        atomic_write(output, text, durable=False)
    except OSError as exc:
        fail(f"-o {output}: {exc.strerror or exc}")
    console.print(f"wrote {output}", highlight=False)
