"""A table that draws only the rows in view: the backlog's thousands of rows filter in milliseconds.

Textual's DataTable measures and stores every row it is given (about 0.15 ms a row, measured), so
refilling it on each filter keystroke costs most of a second at 5,000 items. This widget keeps the
rows as a list and renders the visible lines on demand; column widths are set from the data once.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
WIDEST = 40
"""No column grows wider than this (long titles and errors are cut)."""


class RowTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header line, a row cursor, `enter` selects."""

    DEFAULT_CSS = """
    RowTable { height: 1fr; }
    RowTable > .rowtable--header { text-style: bold; }
    RowTable > .rowtable--cursor { background: $accent; color: $text; }
    """
    COMPONENT_CLASSES = {"rowtable--header", "rowtable--cursor"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
    ]
    cursor_row: reactive[int] = reactive(0)

    class Selected(Message):
        """The user pressed enter on row `index`."""

        def __init__(self, table: RowTable, index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: list[str] = []
        self.widths: list[int] = []
        self.rows: Sequence[Sequence[Cell]] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def get_row_at(self, index: int) -> Sequence[Cell]:
        return self.rows[index]

    def set_columns(self, names: Sequence[str], fixed: dict[str, int] | None = None) -> None:
        """The header; `fixed` gives some columns a width that the data does not change."""
        self.columns = list(names)
        self.fixed = fixed or {}
        self.widths = [self.fixed.get(name, len(name)) for name in names]

    def fit(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Size the columns that are not fixed to the widest cell of `rows` (at most WIDEST)."""
        for column, name in enumerate(self.columns):
            if name not in self.fixed:
                widest = max((len(row[column]) for row in rows), default=0)
                self.widths[column] = min(WIDEST, max(len(name), widest))

    def set_rows(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Show `rows` (the cursor stays in range)."""
        self.rows = rows
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        self.cursor_row = max(0, min(self.cursor_row, len(rows) - 1))
        self.refresh()

    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self.rows) - 1))

    def watch_cursor_row(self, row: int) -> None:
        top, height = self.scroll_offset.y, max(1, self.size.height - 1)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False)
        self.refresh()

    def action_move(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.rows) - 1)

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self, self.cursor_row))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            header = self.get_component_rich_style("rowtable--header")
            return self._strip([Text(name) for name in self.columns], header, width)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        cursor = index == self.cursor_row
        style = self.get_component_rich_style("rowtable--cursor") if cursor else self.rich_style
        return self._strip(self.rows[index], style, width)

    def _strip(self, cells: Sequence[Cell], base: Style, width: int) -> Strip:
        segments = [Segment(" ", base)]
        for cell, column_width in zip(cells, self.widths, strict=False):
            text = cell if isinstance(cell, Text) else Text(cell)
            plain = text.plain[:column_width].ljust(column_width + 2)
            style = base + Style.parse(str(text.style)) if text.style else base
            segments.append(Segment(plain, style))
        return Strip(segments).crop_extend(0, width, base)
