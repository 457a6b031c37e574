"""The HTML report's charts as inline SVG, drawn with matplotlib's SVG backend (imported here only).

No pyplot (no global figure state); text stays text in the SVG (`svg.fonttype: none`, smaller and
copyable); a transparent background and mid-grey ink read on light and dark pages alike. Each chart
comes with the table of its numbers (docs/decisions/0003-charts-as-inline-svg.md).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from agentsprint.money import usd_text
from agentsprint.retro.tables import Table, duration, num

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Report = dict[str, Any]
INK = "#8a8f98"
STATUS_COLOURS = {"done": "#2e9e5b", "awaiting_review": "#3b82c4", "escalated": "#d9822b", "failed": "#c8423b",
                  "stopped": "#8e6cc0", "dropped": "#9aa0a6"}
BAR = "#3b82c4"
MOST_BARS = 40
"""Items drawn in the cost-per-item chart (the costliest); its table lists every item."""


@dataclass(frozen=True)
class Chart:
    """One chart: an id for the page, a title, the SVG markup and the table of its numbers."""

    id: str
    title: str
    svg: str
    table: Table


def _axes(width: float = 6.4, height: float = 3.0, label_chars: int = 8) -> Axes:
    """Axes on a transparent figure; fixed margins (a layout engine doubled the drawing time, measured)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=72)
    figure.patch.set_alpha(0.0)
    left = min(0.12 + 0.011 * label_chars, 0.5)
    figure.subplots_adjust(left=left, right=0.97, top=0.95, bottom=0.3 / height + 0.08)
    axes = figure.add_subplot()
    axes.set_facecolor("none")
    for spine in axes.spines.values():
        spine.set_color(INK)
    axes.tick_params(colors=INK, labelsize=9)
    axes.xaxis.label.set_color(INK)
    axes.yaxis.label.set_color(INK)
    return axes


def _svg(axes: Axes) -> str:
    """The figure of `axes` as an inline <svg> element (no XML prolog, no fixed size: it scales)."""
    from matplotlib import rcParams

    rcParams["svg.fonttype"] = "none"
    rcParams["svg.hashsalt"] = "agentsprint-retro"  # stable ids: the same report gives the same file
    buffer = io.StringIO()
    cast("Figure", axes.figure).savefig(buffer, format="svg", transparent=True)
    markup = buffer.getvalue()
    markup = re.sub(r"<metadata>.*?</metadata>", "", markup[markup.index("<svg"):], flags=re.DOTALL)
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 role="img"', markup, count=1)


def _empty(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no data", ha="center", va="center", color=INK, transform=axes.transAxes)


def _when(epoch: float) -> Any:
    """A UTC datetime (typed Any: matplotlib's stubs do not list datetimes as plottable)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def burn_up(report: Report) -> Chart:
    """Cumulative spend over the scope against the sprint's USD budget."""
    axes, series = _axes(), report["burn_up"]
    budget = (report["scope"]["sprint"] or {}).get("usd")
    if series:
        times: Any = [_when(p["at"]) for p in series]
        axes.step(times, [p["usd"] for p in series], where="post", color=BAR)
        axes.fill_between(times, [p["usd"] for p in series], step="post", color=BAR, alpha=0.25)
    else:
        _empty(axes)
    if budget:
        axes.axhline(budget, color=STATUS_COLOURS["failed"], linestyle="--", label=f"budget {usd_text(budget)}")
        axes.legend(frameon=False, labelcolor=INK, fontsize=9)
    axes.set_ylabel("USD spent")
    rows = [[_when(p["at"]).strftime("%Y-%m-%d %H:%M:%S"), usd_text(p["usd"])] for p in series[-20:]]
    return Chart("burn-up", "Spend burn-up against budget", _svg(axes), Table("", ["time (UTC)", "USD"], rows))


def cost_per_item(report: Report) -> Chart:
    """USD per item coloured by outcome, each with its budget marked."""
    rows = sorted(report["items"], key=lambda i: -i["usd"])[:MOST_BARS]
    axes = _axes(height=max(3.0, 0.22 * len(rows) + 1), label_chars=max((len(r["id"]) for r in rows), default=4))
    if rows:
        names = [r["id"] for r in rows][::-1]
        axes.barh(names, [r["usd"] for r in rows][::-1],
                  color=[STATUS_COLOURS.get(r["status"], INK) for r in rows][::-1])
        marked = [(r["id"], r["budget_usd"]) for r in rows if r["budget_usd"]]
        if marked:
            axes.scatter([b for _, b in marked], [n for n, _ in marked], marker="|", s=200, color=INK,
                         label="budget", zorder=3)
            axes.legend(frameon=False, labelcolor=INK, fontsize=9)
    else:
        _empty(axes)
    axes.set_xlabel("USD")
    table = Table("", ["item", "status", "USD", "budget"], [[i["id"], i["status"], usd_text(i["usd"]),
                  usd_text(i["budget_usd"]) if i["budget_usd"] is not None else "n/a"] for i in report["items"]])
    return Chart("cost-per-item", "Cost per item by outcome", _svg(axes), table)


def review_queue(report: Report) -> Chart:
    """Items awaiting review over time."""
    axes, points = _axes(), report["review_queue"]
    if points:
        end = max(points[-1]["at"], dt.datetime.fromisoformat(report["scope"]["generated_at"]).timestamp())
        times = [points[0]["at"], *(p["at"] for p in points), end]
        counts = [0, *(p["count"] for p in points), points[-1]["count"]]
        shown: Any = [_when(t) for t in times]
        axes.step(shown, counts, where="post", color=BAR)
        axes.set_ylim(bottom=0)
    else:
        _empty(axes)
    axes.set_ylabel("awaiting review")
    rows = [[_when(p["at"]).strftime("%Y-%m-%d %H:%M:%S"), str(p["count"])] for p in points[-20:]]
    return Chart("review-queue", "Review queue over time", _svg(axes), Table("", ["time (UTC)", "items"], rows))


def _bars(chart_id: str, title: str, values: dict[str, float], unit: str, text: Callable[[float], str]) -> Chart:
    axes = _axes(height=max(2.2, 0.35 * len(values) + 1), label_chars=max(map(len, values), default=4))
    if values and any(values.values()):
        axes.barh(list(values)[::-1], list(values.values())[::-1], color=BAR)
    else:
        _empty(axes)
    axes.set_xlabel(unit)
    return Chart(chart_id, title, _svg(axes), Table("", ["", unit], [[k, text(v)] for k, v in values.items()]))


def by_role(report: Report) -> Chart:
    """USD per role."""
    return _bars("spend-by-role", "Spend by role", {k: v["usd"] for k, v in report["by_role"].items()}, "USD",
                 usd_text)


def by_model(report: Report) -> Chart:
    """USD per model."""
    return _bars("spend-by-model", "Spend by model", {k: v["usd"] for k, v in report["by_model"].items()}, "USD",
                 usd_text)


def token_kinds(report: Report) -> Chart:
    """Tokens: uncached input, cached input, output."""
    t = report["tokens"]
    values = {"input (uncached)": t["input"] - t["cached_input"], "cached input": t["cached_input"],
              "output": t["output"]}
    return _bars("tokens", "Tokens: input, cached input, output", values, "tokens", lambda v: num(int(v)))


def review_waits(report: Report) -> Chart:
    """How long items waited for a human decision."""
    waits = [i["review_wait"] / 3600 for i in report["items"] if i["review_wait"] is not None]
    axes = _axes()
    if waits:
        axes.hist(waits, bins=min(max(len(waits), 1), 20), color=BAR)
    else:
        _empty(axes)
    axes.set_xlabel("hours waiting for review")
    axes.set_ylabel("items")
    spread = report["review_wait"]
    table = Table("", ["", "wait"], [[k, duration(spread[k])] for k in ("median", "p90", "max")])
    return Chart("review-wait", "Review wait distribution", _svg(axes), table)


CHARTS: list[Callable[[Report], Chart]] = [burn_up, cost_per_item, review_queue, by_role, by_model, token_kinds,
                                           review_waits]


def all_charts(report: Report) -> list[Chart]:
    """Every chart of the HTML report, in METRICS.md's order."""
    return [draw(report) for draw in CHARTS]
