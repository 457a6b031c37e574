"""The one module that talks to DBOS: launch, workflow status, enqueue, cancel, resume, recovery, serializer.

Every other runner module reaches DBOS through here, so a DBOS upgrade changes this file only. DBOS is
imported inside the functions: importing this module stays cheap for the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from agentsprint.config import Settings

if TYPE_CHECKING:
    from dbos import DBOSClient, Serializer

APP_NAME = "agentsprint"
QUEUE_NAME = "agentsprint-items"
QUEUE_POLLING_SECONDS = 0.05
WORKFLOW_NAME = "item_workflow"  # flow.item_workflow's registered name: a client enqueues it by name
# The workflow code's version, not the package's: DBOS recovers only workflows of the version it
# runs, so this changes only when the workflow's step sequence changes incompatibly.
WORKFLOW_VERSION = "agentsprint-workflow-1"
SERIALIZER_NAME = "agentsprint_redacted_pickle"
EXECUTOR_THREAD_PREFIX = "dbos-executor-"  # DBOS runs workflows (and their steps) in these threads

ACTIVE = frozenset({"PENDING", "ENQUEUED", "DELAYED"})
"""A workflow in one of these states will still run (DELAYED: enqueued to start later): DBOS's own
`workflow_is_active`. Every "is it still going" question in the runner asks `is_active`."""

P = ParamSpec("P")
R = TypeVar("R")


def is_active(status: str | None) -> bool:
    """Whether a workflow with this status (None: no such workflow) is queued, delayed or running."""
    return status in ACTIVE


@dataclass(frozen=True)
class Handle:
    """A workflow started, resumed or found in this process: its id, its status now, its result."""

    workflow_id: str

    def status(self) -> str | None:
        return status(self.workflow_id)

    def result(self) -> object:
        """The workflow's return value; raises what the workflow raised."""
        from dbos import DBOS

        return DBOS.retrieve_workflow(self.workflow_id).get_result()

    def error(self) -> str:
        """`Type: message` of what ended the workflow in ERROR."""
        try:
            self.result()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "workflow ended in error"


# -- inside a launched process ----------------------------------------------------------------------


def workflow() -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator registering a durable workflow."""
    from dbos import DBOS

    return DBOS.workflow()


def step() -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator making a function a recorded step."""
    from dbos import DBOS

    return DBOS.step()


def workflow_id() -> str | None:
    """The id of the workflow running this code, None outside one."""
    from dbos import DBOS

    return DBOS.workflow_id


def step_key() -> tuple[str, int]:
    """(workflow id, step id) of the step running this code: a key stable across replays."""
    from dbos import DBOS

    return DBOS.workflow_id or "", DBOS.step_id or 0


def sleep(seconds: float) -> None:
    """A durable sleep: a recovered workflow does not sleep again for the time already slept."""
    from dbos import DBOS

    DBOS.sleep(seconds)


def status(workflow_id: str | None) -> str | None:
    """The workflow's status (PENDING, ENQUEUED, DELAYED, SUCCESS, ERROR, CANCELLED...); None if unknown."""
    from dbos import DBOS

    if not workflow_id:
        return None
    found = DBOS.get_workflow_status(workflow_id)
    return found.status if found else None


def cancel(workflow_id: str) -> None:
    """Cancel the workflow: it ends at its next step."""
    from dbos import DBOS

    DBOS.cancel_workflow(workflow_id)


def resume(workflow_id: str) -> Handle:
    """Put a cancelled workflow back on the item queue; it continues after its last recorded step."""
    from dbos import DBOS

    DBOS.resume_workflow(workflow_id, queue_name=QUEUE_NAME)
    return Handle(workflow_id)


def enqueue(func: Callable[..., object], workflow_id: str, *args: object) -> Handle:
    """Put a new workflow with this id on the item queue."""
    from dbos import DBOS, SetWorkflowID

    queue = DBOS.retrieve_queue(QUEUE_NAME)
    assert queue is not None, "the item queue is registered at launch"
    with SetWorkflowID(workflow_id):
        queue.enqueue(func, *args)
    return Handle(workflow_id)


def any_active() -> bool:
    """Whether any workflow is still queued, delayed or running (a worker is idle otherwise)."""
    from dbos import DBOS

    found = DBOS.list_workflows(status=sorted(ACTIVE), load_input=False, load_output=False)
    return bool(found)


def recover(executor_ids: list[str]) -> None:
    """Hand the pending workflows of dead executors back to the queue (idempotent)."""
    from dbos import DBOS

    DBOS._recover_pending_workflows(executor_ids)  # DBOS has no public call for another executor's work


def quiet() -> None:
    """Silence DBOS's log (its notes on workflows cancelled at an interrupt are not news)."""
    logging.getLogger("dbos").disabled = True


# -- outside a launched process: a client of the system database ------------------------------------


@dataclass
class Client:
    """The item queue seen from a process that executes nothing (`run --submit`, `stop`)."""

    client: DBOSClient

    def status(self, workflow_id: str | None) -> str | None:
        from dbos._error import DBOSNonExistentWorkflowError

        if not workflow_id:
            return None
        try:
            return str(self.client.retrieve_workflow(workflow_id).get_status().status)
        except DBOSNonExistentWorkflowError:
            return None

    def cancel(self, workflow_id: str) -> None:
        self.client.cancel_workflow(workflow_id)

    def resume(self, workflow_id: str) -> None:
        self.client.resume_workflow(workflow_id, queue_name=QUEUE_NAME)

    def enqueue(self, workflow_id: str, *args: object) -> None:
        """Put the item workflow, by name, on the item queue under this id."""
        from dbos import EnqueueOptions

        options: EnqueueOptions = {"workflow_name": WORKFLOW_NAME, "queue_name": QUEUE_NAME,
                                   "workflow_id": workflow_id, "app_version": WORKFLOW_VERSION}
        self.client.enqueue(options, *args)


@contextmanager
def client(settings: Settings) -> Iterator[Client]:
    """A client of the project's system database, closed after the block."""
    from dbos import DBOSClient

    opened = DBOSClient(system_database_url=system_database_url(settings), application_name=APP_NAME,
                        serializer=serializer())
    try:
        yield Client(opened)
    finally:
        opened.destroy()


# -- bootstrap --------------------------------------------------------------------------------------


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


class _QuietCancellation(logging.Filter):
    """Drop DBOS's traceback for a workflow cancelled by `agentsprint stop`: that is the kill switch working."""

    def filter(self, record: logging.LogRecord) -> bool:
        from dbos._error import DBOSAwaitedWorkflowCancelledError, DBOSWorkflowCancelledError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, (DBOSAwaitedWorkflowCancelledError, DBOSWorkflowCancelledError))


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
    """Start DBOS (recovering this executor's pending workflows) and register the item queue.

    The workflow and its steps must be registered first: import `agentsprint.runner.flow` before.
    """
    from dbos import DBOS, DBOSConfig

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("dbos", "dbos._logger"):
        logging.getLogger(name).setLevel(logging.WARNING)
    dbos_log = logging.getLogger("dbos")
    if not any(isinstance(f, _QuietCancellation) for f in dbos_log.filters):
        dbos_log.addFilter(_QuietCancellation())
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": system_database_url(settings),
        "log_level": "WARNING",
        "application_version": WORKFLOW_VERSION,
        "executor_id": executor_id,
        "notification_listener_polling_interval_sec": 0.1,
        "serializer": serializer(),
    }
    open_system_database(system_database_url(settings), parallel or settings.run.parallel)
    DBOS(config=config)
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
    opened = DBOSClient(system_database_url=url, application_name=APP_NAME, serializer=serializer())
    try:
        if opened.retrieve_queue(QUEUE_NAME) is None:
            opened.register_queue(QUEUE_NAME, worker_concurrency=parallel, polling_interval_sec=QUEUE_POLLING_SECONDS,
                                  on_conflict="never_update")
    finally:
        opened.destroy()


def shutdown(drain_seconds: float = 0.0) -> None:
    """Stop DBOS: no more dequeuing; running workflows get up to `drain_seconds` to finish first."""
    from dbos import DBOS

    DBOS.destroy(destroy_registry=False, workflow_completion_timeout_sec=max(0, round(drain_seconds)))
