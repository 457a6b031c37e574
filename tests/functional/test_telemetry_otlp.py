"""A real run sends its trace over OTLP/HTTP to a receiver on 127.0.0.1; the offline export matches it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from runner_support import TEST_CONFIG, item, make_project

from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: keeps every span POSTed to /v1/traces."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Span] = []
        self.paths: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (the http.server protocol)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        self.server.paths.append(self.path)
        self.server.spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Receiver, list[dict[str, Any]]]]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    root = tmp_path_factory.mktemp("otel") / "p"
    config = TEST_CONFIG + f'\n[telemetry]\notlp_endpoint = "{receiver.endpoint}"\n'
    try:
        with ScriptedServer() as server:
            book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
            settings = make_project(root, server, [item("AS-1", dod=[{"tests": "python -m unittest -q"}, "secrets"])],
                                    book, config=config)
            assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}
            yield root, receiver, list(server.usage)
    finally:
        receiver.shutdown()
        receiver.server_close()


def attrs(span: Span) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return {a.key: next(iter(MessageToDict(a.value).values())) for a in span.attributes}


def test_a_real_run_sends_one_trace_with_the_span_tree(received: tuple[Path, Receiver, list[dict[str, Any]]]) -> None:
    _, receiver, _ = received
    spans = receiver.spans
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    assert len({s.trace_id for s in spans}) == 1, "one trace per item run"
    names = {s.span_id: s.name for s in spans}
    edges = {(names.get(s.parent_span_id), s.name.split(" ")[0]) for s in spans}
    assert {(None, "item"), ("item AS-1", "round"), ("round 1", "invoke_agent"), ("round 1", "gate"),
            ("invoke_agent coder", "chat"), ("invoke_agent coder", "execute_tool")} <= edges
    assert all(s.parent_span_id in names for s in spans if s.parent_span_id), "no orphan spans"
    assert len(spans) == len(set(names)), "each span once"


def test_usage_on_model_calls_totals_what_the_provider_reported(
        received: tuple[Path, Receiver, list[dict[str, Any]]]) -> None:
    _, receiver, usage = received
    chats = [attrs(s) for s in receiver.spans if s.name.startswith("chat ")]
    assert len(chats) == len(usage)
    assert sum(int(c["gen_ai.usage.input_tokens"]) for c in chats) == sum(u["prompt_tokens"] for u in usage)
    assert sum(int(c["gen_ai.usage.output_tokens"]) for c in chats) == sum(u["completion_tokens"] for u in usage)
    assert all(c["gen_ai.operation.name"] == "chat" and c["gen_ai.request.model"].startswith("openai/t-")
               for c in chats)
    others = [attrs(s) for s in receiver.spans if not s.name.startswith("chat ")]
    assert not [a for a in others if "gen_ai.usage.input_tokens" in a or "agentsprint.cost.usd" in a]
    assert not [a for a in others + chats if "gen_ai.tool.call.arguments" in a], "no content by default"


def test_the_offline_export_holds_the_same_spans(
        received: tuple[Path, Receiver, list[dict[str, Any]]], tmp_path: Path) -> None:
    root, receiver, _ = received
    out = tmp_path / "trace.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSPRINT_", "OTEL_"))}
    done = subprocess.run([AGENTSPRINT, "audit", "export", "--format", "otlp-json", "-o", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    written = json.loads(out.read_text(encoding="utf-8"))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sorted((w["spanId"], w["name"]) for w in written) == \
           sorted((s.span_id.hex(), s.name) for s in receiver.spans)
    assert f"{len(written)} spans written" in done.stdout


def test_an_unknown_export_format_is_a_usage_error(
        received: tuple[Path, Receiver, list[dict[str, Any]]], tmp_path: Path) -> None:
    root, _, _ = received
    out = tmp_path / "x.json"
    done = subprocess.run([AGENTSPRINT, "audit", "export", "--format", "otlp-proto", "-o", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "otlp-json" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
