"""The metering proxy's side of one HTTP exchange: the relay that answers the agent."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import TypeVar

from agentsprint.llm.wire import Wire

T = TypeVar("T")


class Relay:
    """Answers one agent request, and counts the time spent waiting on the upstream."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.headers = handler.headers
        self.upstream_seconds = 0.0
        self._waiting_since = 0.0

    def wait_upstream(self) -> None:
        """The proxy starts waiting for the upstream."""
        self._waiting_since = time.perf_counter()

    def upstream_done(self) -> None:
        """The upstream answered (or failed)."""
        self.upstream_seconds += time.perf_counter() - self._waiting_since

    def timed(self, read: Callable[[], T]) -> T:
        """`read()`, counted as upstream time."""
        self.wait_upstream()
        try:
            return read()
        finally:
            self.upstream_done()

    def timed_iter(self, lines: Iterator[str]) -> Iterator[str]:
        """The upstream's lines, the wait for each counted as upstream time."""
        while True:
            self.wait_upstream()
            try:
                line = next(lines)
            except StopIteration:
                return
            finally:
                self.upstream_done()
            yield line

    def send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        """A whole reply."""
        handler = self.handler
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def error(self, wire: Wire, status: int, kind: str, message: str) -> None:
        """An error in `wire`'s own shape."""
        self.send(status, json.dumps(wire.error(status, kind, message)).encode())

    def start_stream(self, content_type: str) -> None:
        """The head of a streamed reply, delimited by closing the connection."""
        handler = self.handler
        handler.close_connection = True
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Cache-Control", "no-cache")
            handler.send_header("Connection", "close")
            handler.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def write_line(self, line: str) -> bool:
        """One line of the stream to the agent; False when the agent has gone."""
        try:
            self.handler.wfile.write(line.encode() + b"\n")
            if not line:
                self.handler.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, ValueError):
            return False
