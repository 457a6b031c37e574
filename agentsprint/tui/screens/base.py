"""What every screen shares: reads and actions in worker threads, and a message line for what went wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.tui.data import Clock


class AppClock(Protocol):
    """What screens read from the app besides its settings (the app is above them: no import of it)."""

    clock: Clock


def error_text(exc: BaseException) -> str:
    """One line for the user: the project's own errors speak for themselves, others say their kind."""
    own = {"ActionError", "NotAllowed", "StoreError", "BacklogError", "ConfigError", "WorkspaceError", "RunLocked",
           "NoSprint", "PlanError", "RetroError"}
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    return text if name in own else f"{name}: {text}"


class Message(Static):
    """A line that says what went wrong (a missing or locked store, an action refused)."""

    def say(self, text: str) -> None:
        self.update(text)
        self.display = bool(text)


class Worked:
    """Mixin: run `work` in a thread, then `done(result)` on the UI thread, or show the error."""

    app: Any

    @property
    def settings(self) -> Settings:
        return self.app.settings  # type: ignore[no-any-return]

    @property
    def tui(self) -> AppClock:
        return self.app  # type: ignore[no-any-return]

    def in_thread(self, work: Callable[[], Any], done: Callable[[Any], None], group: str = "load") -> None:
        """Run `work` in a worker thread; at most one per group (a newer one cancels the older)."""

        def job() -> None:
            try:
                result = work()
            except Exception as exc:  # shown in the app, never a traceback
                self.app.call_from_thread(self.failed, error_text(exc))
                return
            self.app.call_from_thread(done, result)

        self.run_worker(job, thread=True, exclusive=True, group=group)  # type: ignore[attr-defined]

    def failed(self, text: str) -> None:
        """Say what went wrong on the screen's message line (or as a notification)."""
        lines = self.query(Message)  # type: ignore[attr-defined]
        if lines:
            lines.first().say(text)
        else:
            self.app.notify(text, severity="error", timeout=8)


class BaseScreen(Worked, Screen[None]):
    """A full screen with a message line."""

    BINDINGS = [Binding("ctrl+r", "refresh", "Refresh", id="refresh", show=False)]

    def action_refresh(self) -> None:
        self.load()

    def load(self) -> None:
        """Read the screen's data (in a worker)."""


class BaseModal(Worked, ModalScreen[Any]):
    """A dialog; `escape` closes it."""

    BINDINGS = [Binding("escape", "dismiss_none", "Back", id="back")]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
