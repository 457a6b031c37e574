"""The TUI's screens; ALL_SCREENS lists those whose bindings can be remapped."""

from __future__ import annotations

from typing import Any

from agentsprint.tui.screens.backlog import BacklogScreen, ItemScreen, NewItemScreen
from agentsprint.tui.screens.inbox import EscalationScreen, InboxScreen, RetryScreen
from agentsprint.tui.screens.monitor import ConfirmScreen, MonitorScreen
from agentsprint.tui.screens.review import RejectScreen, ReviewScreen
from agentsprint.tui.screens.sprint import BoardScreen, RetroScreen

ALL_SCREENS: list[Any] = [ConfirmScreen, BacklogScreen, ItemScreen, NewItemScreen, MonitorScreen, InboxScreen,
                          ReviewScreen, RejectScreen, EscalationScreen, RetryScreen, BoardScreen, RetroScreen]
