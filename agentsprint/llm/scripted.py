"""A scripted model server: real HTTP on 127.0.0.1, replies taken from a script.

It speaks OpenAI Chat Completions (`/v1/chat/completions`), OpenAI Responses (`/v1/responses`),
Anthropic Messages (`/v1/messages`), each plain or streamed (`"stream": true`, server-sent events,
usage in the stream as each protocol carries it), and Gemini (`/v1/models/M:generateContent`, streamed
at `:streamGenerateContent?alt=sse`; scripted tool calls become `functionCall` parts).

Used by the test suite, the offline demo and `python -m agentsprint.llm.scripted --script FILE.json`
(test a configuration without a provider). By default usage is counted with tiktoken exactly as the
gateway estimates it; `Counting` makes the server count like a provider whose tokenizer differs
(another encoding, and/or a factor on the input count), so budget tests can see the estimate's error.
`max_tokens` is honoured in the server's own count (the reply is cut, finish_reason "length") unless a
reply says otherwise. Depends on the standard library, pydantic and tiktoken only (never on litellm).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentsprint.llm import tokens
from agentsprint.llm.wire import ANTHROPIC, CHAT, GEMINI, RESPONSES, GeminiWire, Wire, wire_for

_call_ids = itertools.count(1)
_reply_ids = itertools.count(1)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


AUTH_HEADERS = ("Authorization", "x-api-key", "anthropic-beta")


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    """One OpenAI-format tool call of `name` with JSON `arguments`."""
    return {
        "id": f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _as_openai_call(call: dict[str, Any]) -> dict[str, Any]:
    if "function" in call:
        return call
    arguments = call.get("arguments", {})
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": call.get("id") or f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": call["name"], "arguments": text},
    }


class ScriptedReply(BaseModel):
    """One scripted reply, with optional faults."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """OpenAI-format calls (see `tool_call`), or the short form {"name": ..., "arguments": {...}}."""
    latency: float = 0.0
    """Seconds to wait before answering."""
    status: int = 200
    """An HTTP error status (429, 500, ...) answered with an OpenAI-format error body."""
    hang: float = 0.0
    """Seconds to wait before answering, meant to exceed the client's timeout."""
    malformed_json: bool = False
    """Send tool-call arguments that are not valid JSON."""
    completion_tokens: int | None = None
    """Report this many output tokens (e.g. more than max_tokens, or negative) instead of counting them."""
    prompt_tokens: int | None = None
    """Report this many input tokens (e.g. far more than were sent, or negative) instead of counting them."""
    cached_tokens: int = 0
    """Report this many of the prompt tokens as cached."""
    omit_usage: bool = False
    """Send no usage at all (some providers do)."""
    garbage: bool = False
    """Answer 200 with a body that is not JSON (a broken provider or a captive portal)."""

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _openai_calls(cls, calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return [_as_openai_call(call) for call in calls or []]


Responder = Callable[[dict[str, Any]], ScriptedReply]


class Counting(BaseModel):
    """How the server counts the usage it reports: by default exactly as the gateway estimates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoding: str | None = None
    """tiktoken encoding to count with (e.g. "o200k_base"); None: the model's, as the gateway picks it."""
    input_factor: float = Field(default=1.0, gt=0)
    """Reported prompt tokens = the count times this (1.15: a tokenizer that counts 15 % more)."""

    def prompt_tokens(self, model: str, body: dict[str, Any], wire: Wire = CHAT) -> int:
        encoding = self.encoding or tokens.encoding_name(model)
        messages, tools = wire.messages(body)
        count = tokens.count_prompt_tokens(messages, tools, encoding)
        return math.ceil(count * self.input_factor)


EXACT = Counting()


class ScriptedServer:
    """Chat Completions, Responses and Anthropic Messages on 127.0.0.1; model "openai/<name>" with
    api_base=`base_url` reaches it through litellm."""

    def __init__(
        self,
        scripts: dict[str, list[ScriptedReply]] | None = None,
        *,
        responders: dict[str, Responder] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        counting: Counting = EXACT,
    ) -> None:
        self.counting = counting
        self._scripts: dict[str, deque[ScriptedReply]] = defaultdict(deque)
        self._responders: dict[str, Responder] = dict(responders or {})
        self._repeat: set[str] = set()
        self._served: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._address = (host, port)
        self._httpd: _OwnedServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        """Every request body received, per model name."""
        self.errors: list[str] = []
        """Script problems (exhausted or missing scripts), for tests to assert on."""
        self.handling_seconds: list[float] = []
        """Server-side time per answered request, excluding scripted latency and hangs."""
        self.usage: list[dict[str, Any]] = []
        """The usage reported with each answered request (model name included), for tests to total."""
        self.auth: list[dict[str, str]] = []
        """The credentials each request carried (Authorization, x-api-key, anthropic-beta), in order."""
        for model, replies in (scripts or {}).items():
            self.add(model, *replies)

    def add(
        self, model: str, *replies: ScriptedReply, responder: Responder | None = None, repeat: bool = False
    ) -> None:
        """Queue replies for `model` ("*": any model without its own); a responder answers after them."""
        with self._lock:
            self._scripts[model].extend(replies)
            if responder is not None:
                self._responders[model] = responder
            if repeat:
                self._repeat.add(model)

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the scripted server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def models(self) -> list[str]:
        with self._lock:
            return sorted(set(self._scripts) | set(self._responders))

    def start(self) -> ScriptedServer:
        """Bind and serve in a daemon thread."""
        self._stopping.clear()
        self._httpd = _OwnedServer(self._address, _Handler, self)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-model-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still sleeping in a latency or hang are woken and dropped."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when the server is stopping."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()

    def _script_key(self, model: str) -> str | None:
        for key in (model, "*"):
            if key in self._scripts or key in self._responders:
                return key
        return None

    def next_reply(self, model: str, body: dict[str, Any]) -> ScriptedReply | str:
        """The reply for this request, or an error message when the script has none."""
        with self._lock:
            self.requests[model].append(body)
            key = self._script_key(model)
            if key is None:
                return self._fail(f"no script for model {model}")
            queue = self._scripts.get(key) or deque()
            responder = self._responders.get(key)
            if not queue and responder is None:
                return self._fail(f"script for model {model} exhausted after {self._served[key]} replies")
            self._served[key] += 1
            if queue:
                reply = queue.popleft()
                if key in self._repeat:
                    queue.append(reply)
                return reply
        assert responder is not None
        return responder(body)

    def _fail(self, message: str) -> str:
        self.errors.append(message)
        return message


def _error(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def _fit(
    content: str | None, calls: list[dict[str, Any]], limit: int | None, encoding: str
) -> tuple[str | None, list[dict[str, Any]], int, bool]:
    """Cut the reply to `limit` output tokens as a provider does: (content, calls, tokens, cut)."""
    used = tokens.count_reply_tokens(content, calls, encoding)
    if limit is None or used <= limit:
        return content, calls, used, False
    text_tokens = tokens.count_text(content, encoding) if content else 0
    if content and text_tokens >= limit:
        return tokens.truncate_text(content, limit, encoding), [], limit, True
    room = limit - text_tokens
    first = calls[0]["function"]
    cut = tokens.truncate_text(first["arguments"], room - tokens.TOOL_CALL_OVERHEAD, encoding)
    return content, [{**calls[0], "function": {"name": first["name"], "arguments": cut}}], limit, True


@dataclass
class _Reply:
    """A scripted reply cut to the request's output cap, with the usage to report."""

    content: str | None
    calls: list[dict[str, Any]]
    finish: str
    prompt: int
    output: int
    cached: int
    usage: bool


def _prepare(model: str, body: dict[str, Any], reply: ScriptedReply, counting: Counting, wire: Wire) -> _Reply:
    encoding = counting.encoding or tokens.encoding_name(model)
    # Ids from the conversation's length, not a process-wide counter: the same script makes the same
    # conversation (and token counts) whatever ran before it in the process or in parallel with it.
    turn = len(wire.messages(body)[0])
    calls = [{**call, "id": f"call_{turn}_{index}"} for index, call in enumerate(reply.tool_calls)]
    if reply.malformed_json:
        calls = [
            {**c, "function": {**c["function"], "arguments": c["function"]["arguments"][:-1] + ",}"}}
            for c in calls
        ]
    limit = wire.requested(body)
    content, calls, used, cut = _fit(reply.content, calls, limit, encoding)
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else counting.prompt_tokens(model, body, wire)
    output = reply.completion_tokens if reply.completion_tokens is not None else used
    finish = "length" if cut else ("tool_calls" if calls else "stop")
    return _Reply(content, calls, finish, prompt, output, min(reply.cached_tokens, max(prompt, 0)),
                  not reply.omit_usage)


def completion_body(model: str, body: dict[str, Any], reply: ScriptedReply,
                    counting: Counting = EXACT) -> dict[str, Any]:
    """The chat.completion JSON for `reply` to request `body`, with usage counted as `counting` says."""
    r = _prepare(model, body, reply, counting, CHAT)
    message: dict[str, Any] = {"role": "assistant", "content": r.content}
    if r.calls:
        message["tool_calls"] = r.calls
    payload: dict[str, Any] = {
        "id": f"chatcmpl-scripted-{next(_reply_ids)}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": message, "finish_reason": r.finish}],
    }
    if r.usage:
        payload["usage"] = {"prompt_tokens": r.prompt, "completion_tokens": r.output,
                            "total_tokens": r.prompt + r.output,
                            "prompt_tokens_details": {"cached_tokens": r.cached}}
    return payload


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"_raw": text}


def anthropic_body(model: str, body: dict[str, Any], reply: ScriptedReply,
                   counting: Counting = EXACT) -> dict[str, Any]:
    """The Anthropic Messages reply for `reply` to request `body` (usage: input excludes cache reads)."""
    r = _prepare(model, body, reply, counting, ANTHROPIC)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": r.content}] if r.content else []
    blocks += [{"type": "tool_use", "id": c["id"], "name": c["function"]["name"],
                "input": _arguments(c["function"]["arguments"])} for c in r.calls]
    stop = {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn"}[r.finish]
    payload: dict[str, Any] = {"id": f"msg_scripted_{next(_reply_ids)}", "type": "message", "role": "assistant",
                               "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": None}
    if r.usage:
        payload["usage"] = {"input_tokens": r.prompt - r.cached, "cache_read_input_tokens": r.cached,
                            "cache_creation_input_tokens": 0, "output_tokens": r.output}
    return payload


def responses_body(model: str, body: dict[str, Any], reply: ScriptedReply,
                   counting: Counting = EXACT) -> dict[str, Any]:
    """The OpenAI Responses reply for `reply` to request `body`."""
    r = _prepare(model, body, reply, counting, RESPONSES)
    output: list[dict[str, Any]] = []
    if r.content:
        output.append({"type": "message", "id": f"msg_{next(_reply_ids)}", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": r.content, "annotations": []}]})
    output += [{"type": "function_call", "id": f"fc_{next(_reply_ids)}", "call_id": c["id"],
                "name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in r.calls]
    payload: dict[str, Any] = {"id": f"resp_scripted_{next(_reply_ids)}", "object": "response", "model": model,
                               "status": "incomplete" if r.finish == "length" else "completed", "output": output}
    if r.usage:
        payload["usage"] = {"input_tokens": r.prompt, "output_tokens": r.output,
                            "total_tokens": r.prompt + r.output,
                            "input_tokens_details": {"cached_tokens": r.cached}}
    return payload


def gemini_body(model: str, body: dict[str, Any], reply: ScriptedReply,
                counting: Counting = EXACT) -> dict[str, Any]:
    """The Gemini generateContent reply for `reply` to request `body` (tool calls as `functionCall` parts)."""
    r = _prepare(model, body, reply, counting, GEMINI)
    parts: list[dict[str, Any]] = [{"text": r.content}] if r.content else []
    parts += [{"functionCall": {"name": c["function"]["name"], "args": _arguments(c["function"]["arguments"])}}
              for c in r.calls]
    candidate = {"content": {"role": "model", "parts": parts}, "index": 0,
                 "finishReason": "MAX_TOKENS" if r.finish == "length" else "STOP"}
    payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": model,
                               "responseId": f"gemini-scripted-{next(_reply_ids)}"}
    if r.usage:
        payload["usageMetadata"] = {"promptTokenCount": r.prompt, "candidatesTokenCount": r.output,
                                    "totalTokenCount": r.prompt + r.output, "cachedContentTokenCount": r.cached}
    return payload


BODIES: dict[str, Callable[[str, dict[str, Any], ScriptedReply, Counting], dict[str, Any]]] = {
    CHAT.name: completion_body, ANTHROPIC.name: anthropic_body, RESPONSES.name: responses_body,
    GEMINI.name: gemini_body}


def _chat_events(payload: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    choice = payload["choices"][0]
    base = {"id": payload["id"], "object": "chat.completion.chunk", "created": payload["created"],
            "model": payload["model"]}
    delta = {key: value for key, value in choice["message"].items() if value is not None}
    events: list[tuple[str | None, dict[str, Any]]] = [
        (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
        (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})]
    if "usage" in payload:
        events.append((None, {**base, "choices": [], "usage": payload["usage"]}))
    return events


def _anthropic_block_events(index: int, block: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """One content block as the API streams it: an empty start, its content as one delta, a stop."""
    if block["type"] == "tool_use":
        empty, delta = {**block, "input": {}}, {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    else:
        empty, delta = {**block, "text": ""}, {"type": "text_delta", "text": block["text"]}
    return [("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}),
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": index})]


def _anthropic_events(payload: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    usage = payload.get("usage") or {}
    start = {**payload, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str | None, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(payload["content"]):
        events += _anthropic_block_events(index, block)
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": payload["stop_reason"]}}
    if usage:
        delta["usage"] = {"output_tokens": usage["output_tokens"]}
    return [*events, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]


def _responses_events(payload: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    created = {key: value for key, value in payload.items() if key != "usage"}
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "response": {**created, "output": []}})]
    for index, item in enumerate(payload["output"]):
        events.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": index,
                                                      "item": item}))
        for part in item.get("content", []):
            events.append(("response.output_text.delta", {"type": "response.output_text.delta",
                                                          "output_index": index, "item_id": item["id"],
                                                          "delta": part.get("text", "")}))
        events.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": index,
                                                     "item": item}))
    kind = "response.completed" if payload["status"] == "completed" else "response.incomplete"
    return [*events, (kind, {"type": kind, "response": payload})]


def stream_events(wire: Wire, payload: dict[str, Any]) -> bytes:
    """The server-sent events of a streamed reply carrying the same content and usage as `payload`."""
    if isinstance(wire, GeminiWire):
        events: list[tuple[str | None, dict[str, Any]]] = [(None, payload)]
    elif wire is ANTHROPIC:
        events = _anthropic_events(payload)
    elif wire is RESPONSES:
        events = _responses_events(payload)
    else:
        events = _chat_events(payload)
    lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
    if wire is CHAT:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


class _OwnedServer(ThreadingHTTPServer):
    """The HTTP server, knowing the ScriptedServer whose scripts its handlers answer from."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: ScriptedServer) -> None:
        super().__init__(address, handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _OwnedServer
    protocol_version = "HTTP/1.1"
    server_version = "agentsprint-scripted/1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms delayed ACK

    @property
    def owner(self) -> ScriptedServer:
        return self.server.owner

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo read `requests` and `errors` instead."""

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            data = [{"id": name, "object": "model", "owned_by": "scripted"} for name in self.owner.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error(404, f"no route {self.path}"))

    def _send_stream(self, data: bytes) -> None:
        """A server-sent-events reply, delimited by closing the connection."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self.owner.auth.append({name: self.headers[name] for name in AUTH_HEADERS if self.headers.get(name)})
        wire = wire_for(self.path)
        if wire is None:
            self._send(404, _error(404, f"no route {self.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._send(400, wire.error(400, "invalid_request_error", f"request body is not JSON: {exc}"))
            return
        self._answer(wire, body)

    def _answer(self, wire: Wire, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        model = wire.model_of(body)
        reply = self.owner.next_reply(model, body)
        if isinstance(reply, str):
            status = 404 if reply.startswith("no script") else 500
            self._send(status, wire.error(status, ERROR_TYPES.get(status, "server_error"), reply))
            return
        delay = reply.latency + reply.hang
        if delay and not self.owner.wait(delay):
            self.close_connection = True
            return
        if reply.status >= 400:
            kind = ERROR_TYPES.get(reply.status, "server_error")
            self._send(reply.status, wire.error(reply.status, kind, f"scripted error {reply.status} for model {model}"))
            return
        self._reply(wire, model, body, reply)
        self.owner.handling_seconds.append(time.perf_counter() - started - delay)

    def _reply(self, wire: Wire, model: str, body: dict[str, Any], reply: ScriptedReply) -> None:
        if reply.garbage:
            self._send_raw(b"<html>upstream says hello</html>")
            return
        payload = BODIES[wire.name](model, body, reply, self.owner.counting)
        usage = wire.usage(payload)
        if usage is not None:
            extra = {} if wire is CHAT else {"prompt_tokens": usage.input_tokens,
                                             "completion_tokens": usage.output_tokens}
            self.owner.usage.append({"model": model, **(payload.get("usage") or payload["usageMetadata"]), **extra})
        if wire.streamed(body):
            self._send_stream(stream_events(wire, payload))
        else:
            self._send(200, payload)

    def _send_raw(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def load_script(path: str, port: int = 0) -> ScriptedServer:
    """A server from a script file: {"models": {name: [reply, ...] | {"replies": [...], "repeat": true}}}."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    server = ScriptedServer(port=port)
    for model, spec in (data.get("models") or {}).items():
        entry = {"replies": spec} if isinstance(spec, list) else spec
        replies = [ScriptedReply.model_validate(reply) for reply in entry.get("replies", [])]
        server.add(model, *replies, repeat=bool(entry.get("repeat", False)))
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve a script file until interrupted."""
    import argparse

    from agentsprint.config import offline_env

    parser = argparse.ArgumentParser(prog="python -m agentsprint.llm.scripted", description=__doc__)
    parser.add_argument("--script", required=True, help="JSON script file (see docs/models-and-budgets.md)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    args = parser.parse_args(argv)
    offline_env()
    try:
        server = load_script(args.script, args.port)
    except (OSError, ValueError) as exc:
        print(f"cannot load {args.script}: {exc}")
        return 2
    with server:
        print(f"scripted model server on {server.base_url} (models: {', '.join(server.models)})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
