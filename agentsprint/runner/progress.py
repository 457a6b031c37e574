"""Live progress of a run: a rich table on a terminal, plain lines elsewhere (CI logs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass
class Row:
    status: str = "queued"
    round: int = 0
    role: str = ""
    tokens: int = 0
    token_limit: int | None = None
    usd: float = 0.0
    last_tool: str = ""


@dataclass
class Board:
    """Collects progress events from step threads and renders them."""

    console: Console
    live: bool
    rows: dict[str, Row] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: Live | None = None

    def update(self, item_id: str, data: dict[str, object]) -> None:
        if not item_id:
            return
        with self._lock:
            row = self.rows.setdefault(item_id, Row())
            before = (row.status, row.round, row.role)
            for key, value in data.items():
                if hasattr(row, key) and value is not None:
                    setattr(row, key, value)
            changed = before != (row.status, row.round, row.role)
        if self._live is not None:
            self._live.update(self.render())
        elif changed:
            self.console.print(f"{item_id}: {row.status} round {row.round} {row.role}".rstrip())

    def render(self) -> Group:
        table = Table(title="agentsprint run", expand=False)
        for column in ("item", "status", "round", "role", "tokens / budget", "usd", "last tool"):
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=48 if column == "last tool" else None)
        with self._lock:
            rows = sorted(self.rows.items())
        for item_id, row in rows:
            table.add_row(item_id, row.status, str(row.round), row.role, _bar(row), f"${row.usd:.4f}",
                          Text(row.last_tool[:48]))
        return Group(table)

    def __enter__(self) -> Board:
        if self.live:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None


def _bar(row: Row) -> str:
    """Tokens spent against the item's budget as a ten-cell bar and figures, e.g. "██░░░░░░░░ 12,000 / 50,000"."""
    if not row.token_limit:
        return f"{row.tokens:,}"
    filled = round(10 * min(row.tokens, row.token_limit) / row.token_limit)
    return f"{'█' * filled}{'░' * (10 - filled)} {row.tokens:,} / {row.token_limit:,}"
