"""Live progress of a run: a board on a terminal, plain lines elsewhere (CI logs).

The board's columns are laid out from what does not change during a run (the terminal width, the
item ids, the budgets), so they stay put from frame to frame; item ids and statuses are never cut.
Running items come first; when the terminal is too short, finished items fold into one summary line.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads when a board is made (cli/ modules import only typer at the top)
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

ACTIVE = ("running", "queued", "planned", "todo")
"""Statuses of items still in progress: shown first, never folded away."""
STATUS_WIDTH = len("awaiting_review")
STATUS_STYLES = {"done": "green", "running": "cyan", "awaiting_review": "yellow", "escalated": "red",
                 "failed": "red", "stopped": "magenta", "dropped": "dim"}
GAP = "  "
ITEM_WIDTH = 8
"""The item column is at least this wide, so items starting later (AS-9, then AS-10) do not move it."""
MIN_TOOL_WIDTH = 12
USD_WIDTH = 9
ROLE_WIDTH = len("supervisor")
ROUND_WIDTH = len("round")
CHROME_LINES = 2
"""Lines the board takes besides item rows: the title and the header."""
LOGGERS = ("dbos",)
"""Libraries whose log records would be drawn over the board: printed above it instead."""


@dataclass
class Row:
    status: str = "queued"
    round: int = 0
    role: str = ""
    tokens: int = 0
    token_limit: int | None = None
    usd: float = 0.0
    last_tool: str = ""


@dataclass(frozen=True)
class Layout:
    """Which columns are shown and how wide each is (None: the column is left out)."""

    item: int
    status: int
    round: int | None
    role: int | None
    tokens: int | None
    bar: bool
    usd: int | None
    tool: int | None


class _AboveBoard(logging.Filter):
    """Prints a library's log record above the live board (rich keeps the board below) and drops it."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        from rich.text import Text

        self.console.print(Text(f"{record.levelname.lower()}: {record.getMessage()}", style="dim"))
        return False


@dataclass
class Board:
    """Collects progress events from step threads and renders them."""

    console: Console
    live: bool
    rows: dict[str, Row] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: Live | None = None
    _status_width: int = STATUS_WIDTH
    _run_items: tuple[str, ...] = ()
    _log_filter: _AboveBoard | None = None

    def update(self, item_id: str, data: dict[str, object]) -> None:
        if not item_id:  # the run's own events: the ids it will show, before any item starts
            run_items = data.get("run_items")
            if isinstance(run_items, list):
                with self._lock:
                    self._run_items = tuple(str(i) for i in run_items)
            return
        with self._lock:
            row = self.rows.setdefault(item_id, Row())
            before = (row.status, row.round, row.role)
            for key, value in data.items():
                if hasattr(row, key) and value is not None:
                    setattr(row, key, value)
            self._status_width = max(self._status_width, len(row.status))
            changed = before != (row.status, row.round, row.role)
        if self._live is not None:
            self._live.update(self.render())
        elif changed:
            self.console.print(f"{item_id}: {row.status} round {row.round} {row.role}".rstrip(), highlight=False)

    def render(self) -> Group:
        from rich.console import Group
        from rich.text import Text

        with self._lock:
            rows = {item_id: Row(**vars(row)) for item_id, row in self.rows.items()}
            status_width, run_items = self._status_width, self._run_items
        layout = choose_layout(rows, self.console.size.width, status_width, run_items)
        shown, folded = _fit(rows, self.console.size.height - CHROME_LINES)
        lines = [Text("agentsprint run", style="bold"), _header(layout)]
        lines += [_line(layout, item_id, rows[item_id]) for item_id in shown]
        if folded:
            lines.append(Text(_summary(rows, folded), style="dim"))
        for line in lines:
            line.no_wrap = True
            line.overflow = "crop"
        return Group(*lines)

    def __enter__(self) -> Board:
        if self.live:
            from rich.live import Live

            self._live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
            self._log_filter = _AboveBoard(self.console)
            for name in LOGGERS:
                logging.getLogger(name).addFilter(self._log_filter)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._log_filter is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeFilter(self._log_filter)
            self._log_filter = None
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None


def choose_layout(rows: dict[str, Row], width: int, status_width: int = STATUS_WIDTH,
                  run_items: tuple[str, ...] = ()) -> Layout:
    """The richest layout that fits `width`: columns drop (last tool, the bar, usd, role, round), ids never shrink.

    The id column fits every id of the run (`run_items`), not only those started yet: it never moves."""
    item = max([ITEM_WIDTH, *(len(item_id) for item_id in (*rows, *run_items))])
    figures = _figures_width(rows)
    candidates = [
        (ROUND_WIDTH, ROLE_WIDTH, figures + 11, True, USD_WIDTH, MIN_TOOL_WIDTH),
        (ROUND_WIDTH, ROLE_WIDTH, figures + 11, True, USD_WIDTH, None),
        (ROUND_WIDTH, ROLE_WIDTH, figures, False, USD_WIDTH, MIN_TOOL_WIDTH),
        (ROUND_WIDTH, ROLE_WIDTH, figures, False, USD_WIDTH, None),
        (ROUND_WIDTH, ROLE_WIDTH, figures, False, None, None),
        (ROUND_WIDTH, ROLE_WIDTH, None, False, None, None),
        (ROUND_WIDTH, None, None, False, None, None),
        (None, None, None, False, None, None),
    ]
    for round_w, role_w, tokens_w, bar, usd_w, tool_w in candidates:
        used = _used(item, status_width, round_w, role_w, tokens_w, usd_w)
        if tool_w is not None:
            tool_w = width - used - len(GAP)
        if used <= width and (tool_w is None or tool_w >= MIN_TOOL_WIDTH):
            return Layout(item, status_width, round_w, role_w, tokens_w, bar, usd_w, tool_w)
    return Layout(item, status_width, None, None, None, False, None, None)


def _used(*widths: int | None) -> int:
    shown = [w for w in widths if w is not None]
    return sum(shown) + len(GAP) * (len(shown) - 1)


def _figures_width(rows: dict[str, Row]) -> int:
    """Width of "12,000 / 300,000" for the largest budget (or spend, when uncapped)."""
    limits = [row.token_limit for row in rows.values() if row.token_limit]
    widest = max(len("1,000,000"), len(f"{max(limits):,}") if limits else 0)
    return max(len("tokens"), 2 * widest + 3)


def _fit(rows: dict[str, Row], room: int) -> tuple[list[str], list[str]]:
    """Item ids to draw (active first) and the finished ones folded into the summary line."""
    active = sorted(item_id for item_id, row in rows.items() if row.status in ACTIVE)
    finished = sorted(item_id for item_id in rows if item_id not in active)
    if len(active) + len(finished) <= room:
        return active + finished, []
    keep = max(0, room - 1 - len(active))
    return active + finished[:keep], finished[keep:]


def _summary(rows: dict[str, Row], folded: list[str]) -> str:
    counts = Counter(rows[item_id].status for item_id in folded)
    return f"+ {len(folded)} finished: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _cells(layout: Layout, values: dict[str, str]) -> list[str]:
    """The cells of one line, padded to the layout's widths (values longer than a cut column are cut)."""
    from agentsprint.text import shorten

    cells = [values["item"].ljust(layout.item), values["status"].ljust(layout.status)]
    for key, width in (("round", layout.round), ("role", layout.role), ("tokens", layout.tokens),
                       ("usd", layout.usd), ("tool", layout.tool)):
        if width is not None:
            text = shorten(values[key], width, "…")
            cells.append(text.rjust(width) if key in ("round", "usd") else text.ljust(width))
    return cells


def _header(layout: Layout) -> Text:
    from rich.text import Text

    values = {"item": "item", "status": "status", "round": "round", "role": "role", "tokens": "tokens / budget",
              "usd": "usd", "tool": "last tool"}
    return Text(GAP.join(_cells(layout, values)).rstrip(), style="bold")


def _line(layout: Layout, item_id: str, row: Row) -> Text:
    from rich.text import Text

    from agentsprint.money import usd_text

    values = {"item": item_id, "status": row.status, "round": str(row.round), "role": row.role,
              "tokens": _bar(row) if layout.bar else _figures(row), "usd": usd_text(row.usd),
              "tool": row.last_tool}
    cells = _cells(layout, values)
    text = Text(cells[0] + GAP)
    text.append(cells[1], style=STATUS_STYLES.get(row.status.split(" ")[0], ""))
    text.append((GAP + GAP.join(cells[2:])).rstrip() if cells[2:] else "")
    return text


def _figures(row: Row) -> str:
    return f"{row.tokens:,} / {row.token_limit:,}" if row.token_limit else f"{row.tokens:,}"


def _bar(row: Row) -> str:
    """Tokens spent against the item's budget as a ten-cell bar and figures, e.g. "██░░░░░░░░ 12,000 / 50,000"."""
    if not row.token_limit:
        return f"{'':10} {row.tokens:,}"
    filled = round(10 * min(row.tokens, row.token_limit) / row.token_limit)
    return f"{'█' * filled}{'░' * (10 - filled)} {_figures(row)}"
