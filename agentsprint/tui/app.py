"""The app and its factory: `make_app()` is what the CLI runs and what the tests drive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from agentsprint.config import ConfigError, Settings
from agentsprint.tui import data
from agentsprint.tui.screens.backlog import BacklogScreen
from agentsprint.tui.screens.inbox import InboxScreen
from agentsprint.tui.screens.monitor import MonitorScreen
from agentsprint.tui.screens.sprint import BoardScreen, RetroScreen


class AgentSprintApp(App[None]):
    """Backlog, sprint board, monitor, inbox and retro as modes; review and escalation screens open from the inbox."""

    CSS_PATH = "app.tcss"
    TITLE = "agentsprint"
    ENABLE_COMMAND_PALETTE = True
    MODES = {"backlog": BacklogScreen, "monitor": MonitorScreen, "inbox": InboxScreen, "board": BoardScreen,
             "retro": RetroScreen}
    BINDINGS = [
        Binding("b", "switch_mode('backlog')", "Backlog", id="backlog", show=False),
        Binding("m", "switch_mode('monitor')", "Monitor", id="monitor", show=False),
        Binding("r", "switch_mode('inbox')", "Inbox", id="inbox", show=False),
        Binding("s", "switch_mode('board')", "Sprint board", id="board", show=False),
        Binding("t", "switch_mode('retro')", "Retro", id="retro", show=False),
        Binding("question_mark", "toggle_help", "Keys", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, settings: Settings, clock: data.Clock = data.now, start: str = "backlog") -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.start_mode = start

    def on_mount(self) -> None:
        self.sub_title = str(self.settings.root.name)
        self.set_keymap(self.settings.tui.keys)
        self.switch_mode(self.start_mode)

    def action_toggle_help(self) -> None:
        """Show or hide the keys of the current screen."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette finds every action of the current screen and the app, by its description."""
        titles = set()
        for command in super().get_system_commands(screen):
            titles.add(command.title)
            yield command
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if binding.description and binding.description not in titles:
                titles.add(binding.description)
                yield SystemCommand(binding.description, f"{binding.action} ({key})",
                                    _runner(active.node, binding.action))


def _runner(node: Any, action: str) -> Any:
    async def run() -> None:
        await node.run_action(action)

    return run


def binding_ids() -> set[str]:
    """Every remappable binding id of the app and its screens."""
    from agentsprint.tui.screens import ALL_SCREENS

    classes = {base for cls in [AgentSprintApp, *ALL_SCREENS] for base in cls.__mro__}
    return {b.id for cls in classes for b in vars(cls).get("BINDINGS", []) if isinstance(b, Binding) and b.id}


def check_keys(settings: Settings) -> None:
    """ConfigError naming the file and the id when [tui.keys] names a binding that does not exist."""
    known = binding_ids()
    for binding_id in settings.tui.keys:
        if binding_id not in known:
            raise ConfigError(f"{settings.source}: tui.keys.{binding_id}: no such binding id "
                              f"(known: {', '.join(sorted(known))})")


def make_app(settings: Settings | None = None, *, clock: data.Clock = data.now,
             start: str = "backlog") -> AgentSprintApp:
    """The app on a project's settings (default: the current folder's); ConfigError for unknown key ids."""
    from agentsprint.config import load_settings

    settings = settings or load_settings()
    check_keys(settings)
    return AgentSprintApp(settings, clock, start)
