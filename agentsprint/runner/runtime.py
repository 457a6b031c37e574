"""Process-wide runtime the durable steps use, and the DBOS bootstrap.

Steps are module-level functions (DBOS registers them by name); they reach the settings, store,
gateway and workspace of this process through `current()`, set once by the composition root.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentsprint.config import Settings

if TYPE_CHECKING:
    from dbos import Serializer

    from agentsprint.llm.gateway import Gateway
    from agentsprint.store import Store
    from agentsprint.workspace import Workspace

APP_NAME = "agentsprint"
QUEUE_NAME = "agentsprint-items"
QUEUE_POLLING_SECONDS = 0.05
# The workflow code's version, not the package's: DBOS recovers only workflows of the version it
# runs, so this changes only when the workflow's step sequence changes incompatibly.
WORKFLOW_VERSION = "agentsprint-workflow-1"

ProgressSink = Callable[[str, dict[str, object]], None]


@dataclass
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    workspace: Workspace
    progress: ProgressSink | None = None
    executor_id: str = "local"
    extra: dict[str, object] = field(default_factory=dict)

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


def system_database_url(settings: Settings) -> str:
    """DBOS's system database: SQLite next to the app database, or the same Postgres (schema dbos)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        return f"sqlite:///{settings.state_dir / 'dbos.sqlite'}"
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def open_system_database(url: str, parallel: int) -> None:
    """Migrate DBOS's system database and declare the item queue; StoreError naming a bad file.

    A SQLite file that is no database is refused before DBOS opens it (DBOS would start a journal
    beside it first); what DBOS's driver reports about a damaged one becomes one line too.
    """
    from sqlalchemy.exc import DatabaseError

    from agentsprint.store.errors import StoreError, check_sqlite_file

    if url.startswith("sqlite:///"):
        check_sqlite_file(Path(url[len("sqlite:///") :]))
    try:
        _declare_queue(url, parallel)
    except DatabaseError as exc:
        raise StoreError(f"cannot open DBOS's system database {url}: {' '.join(str(exc.orig).split())}") from exc


def new_executor_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _QuietCancellation(logging.Filter):
    """Drop DBOS's traceback for a workflow cancelled by `agentsprint stop`: that is the kill switch working."""

    def filter(self, record: logging.LogRecord) -> bool:
        from dbos._error import DBOSAwaitedWorkflowCancelledError, DBOSWorkflowCancelledError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, (DBOSAwaitedWorkflowCancelledError, DBOSWorkflowCancelledError))


SERIALIZER_NAME = "agentsprint_redacted_pickle"


def serializer() -> Serializer:
    """DBOS's serializer for step outputs, workflow inputs and errors: pickle with every string redacted.

    Model replies, plans and tool outputs are step outputs: stored raw they would put secrets into
    the system database. The running workflow still gets the step's real return value; a recovered
    one gets the redacted record (as a replayed model call gets the redacted settled reply).
    Records written before (named "py_pickle") are still read by DBOS's own serializer.
    """
    import base64
    import pickle

    from dbos import Serializer

    from agentsprint.redaction import redacted_pickle

    class RedactingSerializer(Serializer):
        def serialize(self, data: object) -> str:
            return base64.b64encode(redacted_pickle(data)).decode("ascii")

        def deserialize(self, serialized_data: str) -> object:
            return pickle.loads(base64.b64decode(serialized_data))

        def name(self) -> str:
            return SERIALIZER_NAME

    return RedactingSerializer()


def launch(settings: Settings, *, executor_id: str = "local", parallel: int | None = None) -> None:
    """Start DBOS (recovering this executor's pending workflows) and register the item queue."""
    from dbos import DBOS

    from agentsprint.runner import flow  # noqa: F401  (registers the workflow and its steps)

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("dbos", "dbos._logger"):
        logging.getLogger(name).setLevel(logging.WARNING)
    dbos_log = logging.getLogger("dbos")
    if not any(isinstance(f, _QuietCancellation) for f in dbos_log.filters):
        dbos_log.addFilter(_QuietCancellation())
    config = {
        "name": APP_NAME,
        "system_database_url": system_database_url(settings),
        "log_level": "WARNING",
        "application_version": WORKFLOW_VERSION,
        "executor_id": executor_id,
        "notification_listener_polling_interval_sec": 0.1,
        "serializer": serializer(),
    }
    open_system_database(str(config["system_database_url"]), parallel or settings.run.parallel)
    DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()
    DBOS.register_queue(QUEUE_NAME, worker_concurrency=parallel or settings.run.parallel,
                        polling_interval_sec=QUEUE_POLLING_SECONDS)


def _declare_queue(url: str, parallel: int) -> None:
    """Create the item queue in a new system database before launch.

    DBOS's queue manager looks for queues at launch and then once a second, so a queue first
    registered after launch waited up to a second before its first dequeue (every first run).
    """
    from dbos import DBOS, DBOSClient

    DBOS.migrate(url)
    client = DBOSClient(system_database_url=url, application_name=APP_NAME, serializer=serializer())
    try:
        if client.retrieve_queue(QUEUE_NAME) is None:
            client.register_queue(QUEUE_NAME, worker_concurrency=parallel, polling_interval_sec=QUEUE_POLLING_SECONDS,
                                  on_conflict="never_update")
    finally:
        client.destroy()


def shutdown(drain_seconds: float = 0.0) -> None:
    """Stop DBOS: no more dequeuing; running workflows get up to `drain_seconds` to finish first."""
    from dbos import DBOS

    DBOS.destroy(destroy_registry=False, workflow_completion_timeout_sec=max(0, round(drain_seconds)))
