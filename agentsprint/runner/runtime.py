"""Process-wide runtime the durable steps use (DBOS itself is behind `runner.durable`).

Steps are module-level functions (DBOS registers them by name); they reach the settings, store,
gateway and workspace of this process through `current()`, set once by the composition root.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentsprint.config import Settings

if TYPE_CHECKING:
    from agentsprint.llm.gateway import Gateway
    from agentsprint.llm.proxy import MeteringProxy
    from agentsprint.store import Store
    from agentsprint.workspace import Workspace

ProgressSink = Callable[[str, dict[str, object]], None]


@dataclass
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    workspace: Workspace
    progress: ProgressSink | None = None
    executor_id: str = "local"
    _proxy: MeteringProxy | None = None
    _proxy_lock: threading.Lock = field(default_factory=threading.Lock)

    def metering_proxy(self) -> MeteringProxy:
        """The process's metering proxy for external agents, started on first use."""
        from agentsprint.llm.proxy import MeteringProxy

        with self._proxy_lock:
            if self._proxy is None:
                self._proxy = MeteringProxy(self.gateway).start()
            return self._proxy

    def emit(self, item_id: str, **data: object) -> None:
        """Send a live-progress update (never durable, never fails the run)."""
        if self.progress is not None:
            try:
                self.progress(item_id, data)
            except Exception:  # a display problem must not break execution
                logging.getLogger(__name__).debug("progress sink failed", exc_info=True)


_CURRENT: Runtime | None = None


def current() -> Runtime:
    if _CURRENT is None:
        raise RuntimeError("agentsprint runtime is not configured in this process")
    return _CURRENT


def build_runtime(settings: Settings, progress: ProgressSink | None = None, executor_id: str = "local") -> Runtime:
    """Open the store, gateway and workspace for `settings` and make them this process's runtime."""
    global _CURRENT
    from agentsprint.llm.gateway import Gateway
    from agentsprint.store import Store
    from agentsprint.workspace import Workspace

    store = Store(settings.database_url)
    runtime = Runtime(
        settings=settings,
        store=store,
        gateway=Gateway(settings, store),
        workspace=Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch),
        progress=progress,
        executor_id=executor_id,
    )
    _CURRENT = runtime
    return runtime


def new_executor_id() -> str:
    """A unique executor id for a process sharing the queue: host, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
