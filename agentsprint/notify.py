"""Webhooks: a signed JSON POST when an item reaches awaiting_review, done, escalated or failed.

Standard library only for sending. Every event is first a row of the outbox (`webhook_outbox`), then
posted on a background daemon thread with bounded retries and exponential backoff, so a slow or dead
receiver never slows a run; `flush` drains the queue for a bounded time at exit. What a killed (or
flushed-out) process did not deliver is sent by the next `run` or `worker` (`resume`): at least once,
always with the same `delivery_id`. A delivery that finally fails is recorded as a `notify.failed`
event and stays in the outbox with its error.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agentsprint import __version__
from agentsprint.domain import Status
from agentsprint.redaction import redact_value

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.store import Store

EVENTS = {Status.AWAITING_REVIEW: "item.awaiting_review", Status.DONE: "item.done",
          Status.ESCALATED: "item.escalated", Status.FAILED: "item.failed"}
SIGNATURE_HEADER = "X-Agentsprint-Signature"
ATTEMPTS = 5
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 5.0
FLUSH_SECONDS = 5.0
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}

log = logging.getLogger(__name__)
FailureSink = Callable[["Delivery", str, int], None]
ResultSink = Callable[["Delivery", "str | None", int], None]
"""Called when a delivery ends: (delivery, error or None when delivered, attempts made)."""


@dataclass(frozen=True)
class Delivery:
    """One event to POST: the exact body bytes that are signed and sent."""

    url: str
    body: bytes
    event: str
    delivery_id: str
    secret: str | None


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def delivery_id(item_id: str, event: str, attempt_key: str) -> str:
    """Stable id of one item event of one attempt: a replayed step re-sends the same id."""
    return hashlib.sha256(f"{item_id}\n{event}\n{attempt_key}".encode()).hexdigest()


def build(url: str, secret: str | None, payload: dict[str, Any]) -> Delivery:
    body = json.dumps(redact_value(payload), sort_keys=True, separators=(",", ":")).encode("utf-8")
    return Delivery(url, body, str(payload["event"]), str(payload["delivery_id"]), secret)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without its body: report it as a failure instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


def post(delivery: Delivery, timeout: float) -> None:
    """POST once; raises RetryableError or PermanentError when the receiver does not accept it."""
    headers = {"Content-Type": "application/json", "User-Agent": f"agentsprint/{__version__}",
               "X-Agentsprint-Event": delivery.event, "X-Agentsprint-Delivery": delivery.delivery_id}
    if delivery.secret:
        headers[SIGNATURE_HEADER] = sign(delivery.body, delivery.secret)
    request = urllib.request.Request(delivery.url, data=delivery.body, headers=headers, method="POST")
    try:
        with _opener().open(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        error = RetryableError if exc.code in RETRY_STATUSES else PermanentError
        raise error(f"HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:  # URLError, timeouts and resets are OSErrors
        raise RetryableError(f"{type(exc).__name__}: {exc}") from exc


class RetryableError(Exception):
    """The receiver may accept the event later (timeout, connection error, 429, 5xx)."""


class PermanentError(Exception):
    """The receiver refused the event (4xx other than 408/425/429); retrying would not help."""


class Notifier:
    """A queue of deliveries and the daemon thread that sends them, retrying with backoff."""

    def __init__(self, *, attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS,
                 timeout: float = TIMEOUT_SECONDS, on_failure: FailureSink | None = None) -> None:
        self.attempts, self.backoff, self.timeout = max(1, attempts), backoff, timeout
        self.on_failure = on_failure
        self.pending: queue.Queue[tuple[Delivery, FailureSink | None, ResultSink | None]] = queue.Queue()
        self.delivered: list[str] = []
        self._thread = threading.Thread(target=self._run, name="agentsprint-notify", daemon=True)
        self._thread.start()

    def send(self, delivery: Delivery, on_failure: FailureSink | None = None,
             on_result: ResultSink | None = None) -> None:
        """Queue the delivery and return at once; `on_result` hears how it ended."""
        self.pending.put((delivery, on_failure or self.on_failure, on_result))

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait up to `timeout` seconds for queued deliveries; True when none is left."""
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending.unfinished_tasks

    def _run(self) -> None:
        while True:
            delivery, on_failure, on_result = self.pending.get()
            try:
                self._deliver(delivery, on_failure, on_result)
            except Exception:  # a defect here must not stop later deliveries
                log.exception("webhook delivery %s crashed", delivery.delivery_id)
            finally:
                self.pending.task_done()

    def _deliver(self, delivery: Delivery, on_failure: FailureSink | None, on_result: ResultSink | None) -> None:
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                post(delivery, self.timeout)
                self.delivered.append(delivery.delivery_id)
                if on_result is not None:
                    on_result(delivery, None, attempt)
                return
            except PermanentError as exc:
                error = str(exc)
                break
            except RetryableError as exc:
                error = str(exc)
                if attempt < self.attempts:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
        log.warning("webhook %s for %s failed after %d attempt(s): %s", delivery.event, _host(delivery.url),
                    attempt, error)
        if on_failure is not None:
            on_failure(delivery, error, attempt)
        if on_result is not None:
            on_result(delivery, error, attempt)


def _host(url: str) -> str:
    """Scheme and host only: webhook URLs often carry a token in their path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


_LOCK = threading.Lock()
_NOTIFIER: Notifier | None = None
_WARNED_UNSIGNED = False


def notifier() -> Notifier:
    """This process's notifier, started (and flushed at exit) on first use."""
    global _NOTIFIER
    with _LOCK:
        if _NOTIFIER is None:
            _NOTIFIER = Notifier()
            atexit.register(flush)
        return _NOTIFIER


def configure(**options: Any) -> Notifier:
    """Replace this process's notifier (attempts, backoff, timeout); what the old one still holds is dropped."""
    global _NOTIFIER
    with _LOCK:
        if _NOTIFIER is None:
            atexit.register(flush)
        _NOTIFIER = Notifier(**options)
        return _NOTIFIER


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Drain this process's queued deliveries for at most `timeout` seconds."""
    return True if _NOTIFIER is None else _NOTIFIER.flush(timeout)


def _secret(settings: Settings) -> str | None:
    global _WARNED_UNSIGNED
    secret = os.environ.get(settings.notify.secret_env) or None
    if secret is None and not _WARNED_UNSIGNED:
        _WARNED_UNSIGNED = True
        log.warning("webhook deliveries are unsigned: set %s to sign them", settings.notify.secret_env)
    return secret


def item_settled(settings: Settings, store: Store, item_id: str, run_id: str | None = None) -> None:
    """Queue the webhook for the item's current status if it is one that is announced; never raises."""
    url = settings.notify.webhook
    if not url:
        return
    try:
        payload = _payload(settings, store, item_id, run_id)
        if payload is None:
            return
        from agentsprint.store import outbox

        _check_url(url)
        delivery = build(url, _secret(settings), payload)
        outbox.add(store, delivery.delivery_id, item_id, delivery.event, delivery.body.decode("utf-8"))
        if outbox.claim(store, delivery.delivery_id, outbox.me()):  # not when a replayed step already sent it
            notifier().send(delivery, _recorder(store, run_id), _settler(store))
    except Exception:  # a notification problem must never fail the item
        log.warning("webhook for %s not queued", item_id, exc_info=True)


def resume(settings: Settings, store: Store) -> int:
    """Queue the outbox's deliveries that no live process is sending (a killed run's); how many. Never raises."""
    url = settings.notify.webhook
    if not url:
        return 0
    queued = 0
    try:
        from agentsprint.store import outbox

        _check_url(url)
        secret = _secret(settings)
        for row in outbox.pending(store):
            if outbox.claim(store, row.delivery_id, outbox.me()):
                delivery = Delivery(url, row.body.encode("utf-8"), row.event, row.delivery_id, secret)
                notifier().send(delivery, _recorder(store, None), _settler(store))
                queued += 1
    except Exception:
        log.warning("pending webhooks not queued", exc_info=True)
    return queued


def _check_url(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"[notify] webhook must be an http(s) URL, not {_host(url)}")


def _settler(store: Store) -> ResultSink:
    """Mark the outbox row delivered or given up (never raises)."""
    def settle(delivery: Delivery, error: str | None, attempts: int) -> None:
        from agentsprint.store import outbox

        try:
            outbox.settle(store, delivery.delivery_id, error, attempts)
        except Exception:
            log.warning("could not record the end of webhook %s", delivery.delivery_id, exc_info=True)

    return settle


def _payload(settings: Settings, store: Store, item_id: str, run_id: str | None) -> dict[str, Any] | None:
    from agentsprint.store import runs

    state = runs.item_state(store, item_id)
    event = EVENTS.get(state.status) if state else None
    if state is None or event is None:
        return None
    workflow_id, _ = runs.workflow_of(store, item_id)
    return {"event": event, "item_id": item_id, "status": state.status.value, "reason": state.reason,
            "run_id": run_id, "at": state.updated_at, "project": settings.root.name,
            "delivery_id": delivery_id(item_id, event, workflow_id or "")}


def _recorder(store: Store, run_id: str | None) -> FailureSink:
    """Record a delivery that finally failed as a `notify.failed` event (never raises)."""
    def record(delivery: Delivery, error: str, attempts: int) -> None:
        from agentsprint.store import runs

        payload = json.loads(delivery.body)
        try:
            runs.record_warning(store, run_id, "notify.failed", {
                "event": delivery.event, "delivery_id": delivery.delivery_id, "url": _host(delivery.url),
                "error": error, "attempts": attempts}, item_id=payload.get("item_id"))
        except Exception:
            log.warning("could not record the failed webhook", exc_info=True)

    return record
