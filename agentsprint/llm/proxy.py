"""The metering proxy: external coding agents call their models through it, within the same budgets.

A loopback HTTP server on 127.0.0.1 speaking Anthropic Messages, OpenAI Chat Completions, OpenAI
Responses and Gemini's generateContent (plain and streamed). Each agent gets a token (`grant`) that
attributes its calls to an item, round and role. Per request: estimate the input exactly as the gateway
does, reserve on the item's, epic's and sprint's scopes in the gateway's ledger (the output cap lowered
to what is left),
refuse in the protocol's own error shape when not even a minimal reply fits, forward upstream, and
settle from the usage in the reply or the stream (the reservation when none is reported). An agent
refused more than `max_refusals` times is stopped: every later call is refused and `on_stop` runs.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agentsprint.llm import tokens
from agentsprint.llm.calls import PendingCall
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted, LLMError, ProviderError
from agentsprint.llm.ledger import Reservation
from agentsprint.llm.proxy_http import Relay
from agentsprint.llm.wire import ANTHROPIC, CHAT, GeminiWire, Usage, Wire, is_count_tokens, sse_events, wire_for

if TYPE_CHECKING:
    import httpx

    from agentsprint.llm.gateway import Gateway

DEFAULT_UPSTREAMS = {"anthropic": "https://api.anthropic.com/v1", "openai": "https://api.openai.com/v1",
                     "gemini": "https://generativelanguage.googleapis.com/v1beta"}
ANTHROPIC_VERSION = "2023-06-01"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")
SUBSCRIPTION_BETA = "oauth-2025-04-20"
"""The Anthropic beta that accepts a subscription login's OAuth token as a bearer token."""


@dataclass
class Grant:
    """One agent's right to call models through the proxy, attributed to `ctx`."""

    token: str
    ctx: CallContext
    imputed: bool = False
    on_stop: Callable[[str], None] | None = None
    refusals: int = 0
    stopped: str | None = None
    """Why the agent was stopped (None: it may call)."""
    refused: str | None = None
    """The last budget refusal's message (None: no call was refused)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    in_flight: int = 0
    """Requests being served (reserved, forwarded, not yet settled)."""
    idle: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def begin(self) -> None:
        with self.idle:
            self.in_flight += 1

    def end(self) -> None:
        with self.idle:
            self.in_flight -= 1
            self.idle.notify_all()

    def wait_idle(self, seconds: float) -> bool:
        """Wait until every request of this grant is settled; False if some still are not after `seconds`."""
        with self.idle:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout=seconds)


def _status_kind(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    return "auth" if status in (401, 403) else "bad_request"


class MeteringProxy:
    """The loopback proxy of one runner process; `grant` a token per agent run, `revoke` it after."""

    def __init__(self, gateway: Gateway, *, max_refusals: int | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.gateway = gateway
        self.max_refusals = max_refusals if max_refusals is not None else gateway.settings.run.max_budget_refusals
        self._grants: dict[str, Grant] = {}
        self._address = (host, port)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self.handling_seconds: list[float] = []
        """Proxy time per forwarded call, excluding the wait for the upstream (the overhead)."""

    @property
    def base_url(self) -> str:
        """The proxy's base URL, ending in /v1 (what OPENAI_BASE_URL expects)."""
        if self._httpd is None:
            raise RuntimeError("the metering proxy is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> MeteringProxy:
        """Bind on loopback and serve in a daemon thread."""
        import httpx

        self._client = httpx.Client(timeout=self.gateway.settings.run.call_timeout_seconds)
        self._httpd = ThreadingHTTPServer(self._address, ProxyHandler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="metering-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the upstream connections."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._client is not None:
            self._client.close()
        self._httpd, self._thread, self._client = None, None, None

    def __enter__(self) -> MeteringProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def grant(self, ctx: CallContext, *, imputed: bool = False,
              on_stop: Callable[[str], None] | None = None) -> Grant:
        """A new token whose calls are charged to `ctx`'s scopes and attributed to its item, round and role."""
        grant = Grant(secrets.token_urlsafe(24), ctx, imputed, on_stop)
        self._grants[grant.token] = grant
        return grant

    def revoke(self, token: str, settle_seconds: float = 0.0) -> None:
        """Refuse every later call made with `token`; then wait up to `settle_seconds` for its calls in
        flight to settle (a streamed reply is settled after its last line: the agent may exit first)."""
        grant = self._grants.pop(token, None)
        if grant is not None and settle_seconds > 0:
            grant.wait_idle(settle_seconds)

    def grant_of(self, headers: Any, path: str = "") -> Grant | None:
        """The grant whose token the request carries (`Authorization: Bearer`, `x-api-key`, Gemini's
        `x-goog-api-key` or `?key=`)."""
        bearer = str(headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("key", [""])[0]
        keys = (headers.get("x-api-key"), headers.get("x-goog-api-key"), query, bearer)
        return self._grants.get(next((str(key).strip() for key in keys if key and str(key).strip()), ""))

    def count_tokens(self, relay: Relay, grant: Grant, raw: bytes) -> None:
        """Anthropic's `/v1/messages/count_tokens`, answered here with the count reservations use: never
        forwarded, never charged, not a model call (nothing recorded)."""
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            messages, tools = ANTHROPIC.messages(body)
        except ValueError as exc:
            relay.error(ANTHROPIC, 400, "invalid_request_error", f"agentsprint proxy cannot read the request: {exc}")
            return
        encoding = tokens.encoding_name(self.gateway.settings.model_for(grant.ctx.role).model)
        relay.send(200, json.dumps({"input_tokens": tokens.count_prompt_tokens(messages, tools, encoding)}).encode())

    def serve(self, relay: Relay, wire: Wire, grant: Grant, raw: bytes) -> None:
        """Meter and forward one request; every outcome is answered in `wire`'s shape."""
        grant.begin()
        try:
            self._serve(relay, wire, grant, raw)
        finally:
            grant.end()

    def _serve(self, relay: Relay, wire: Wire, grant: Grant, raw: bytes) -> None:
        try:
            body, call = self._parse(wire, grant, raw)
        except ValueError as exc:
            relay.error(wire, 400, "invalid_request_error", f"agentsprint proxy cannot read the request: {exc}")
            return
        except LLMError as exc:
            relay.error(wire, 500, "api_error", f"agentsprint proxy: {exc}")
            return
        reservation = self._reserve(relay, wire, grant, call)
        if reservation is None:
            return
        try:
            self._forward(relay, wire, call, reservation, self._outgoing(wire, call, body, reservation))
        except Exception as exc:  # a defect after the request may have gone out: charged, like a crash
            self.gateway.settle_failed(call, reservation, ProviderError("unknown", repr(exc)), charged=True)
            raise

    def _parse(self, wire: Wire, grant: Grant, raw: bytes) -> tuple[dict[str, Any], PendingCall]:
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise ValueError(f"the body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        messages, tools = wire.messages(body)
        ctx = grant.ctx.model_copy(update={"max_tokens": wire.requested(body)})
        return body, self.gateway.prepare(ctx, messages, tools, imputed=grant.imputed)

    def _reserve(self, relay: Relay, wire: Wire, grant: Grant, call: PendingCall) -> Reservation | None:
        if grant.stopped:
            relay.error(wire, 403, "permission_error", grant.stopped)
            return None
        try:
            return self.gateway.reserve(call)
        except BudgetExhausted as exc:
            relay.error(wire, 400, "invalid_request_error", self._refused(grant, exc))
        except LLMError as exc:  # a price unknown while a USD budget is in play
            relay.error(wire, 400, "invalid_request_error", f"agentsprint proxy: {exc}")
        return None

    def _refused(self, grant: Grant, exc: BudgetExhausted) -> str:
        """The refusal's message; past `max_refusals` the agent is stopped."""
        message = f"agentsprint refused the call: {exc}. Do not retry: finish with what you have."
        with grant.lock:
            grant.refusals += 1
            grant.refused = message
            if grant.refusals <= self.max_refusals or grant.stopped:
                return message
            grant.stopped = (f"agentsprint stopped this agent: it kept calling after {self.max_refusals} "
                             f"budget refusals ({exc})")
        if grant.on_stop is not None:
            grant.on_stop(grant.stopped)
        return grant.stopped

    def _outgoing(self, wire: Wire, call: PendingCall, body: dict[str, Any],
                  reservation: Reservation) -> dict[str, Any]:
        """The request sent upstream: the role's model, the output cap granted by the reservation."""
        return wire.outgoing(body, tokens.base_name(call.model), reservation.granted_max_tokens)

    def upstream_url(self, wire: Wire, call: PendingCall) -> str:
        """Where `wire`'s requests for the role go: its api_base, else the provider's own endpoint."""
        family = "anthropic" if wire is ANTHROPIC else "gemini" if isinstance(wire, GeminiWire) else "openai"
        base = call.settings.api_base or DEFAULT_UPSTREAMS[family]
        return f"{base.rstrip('/')}/{wire.upstream_path(tokens.base_name(call.model))}"

    def _headers(self, relay: Relay, wire: Wire, call: PendingCall) -> dict[str, str]:
        headers = {name: relay.headers[name] for name in FORWARDED_HEADERS if relay.headers.get(name)}
        key = call.api_key or ""
        if wire is ANTHROPIC:
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
            if not call.settings.subscription:
                return {**headers, "x-api-key": key}
            beta = ",".join(filter(None, [headers.get("anthropic-beta"), SUBSCRIPTION_BETA]))
            return {**headers, "anthropic-beta": beta, "Authorization": f"Bearer {key}"}
        if isinstance(wire, GeminiWire):
            return {**headers, "x-goog-api-key": key}
        return {**headers, "Authorization": f"Bearer {key}"}

    def _forward(self, relay: Relay, wire: Wire, call: PendingCall, reservation: Reservation,
                 body: dict[str, Any]) -> None:
        import httpx

        assert self._client is not None
        try:
            relay.wait_upstream()
            request = self._client.build_request("POST", self.upstream_url(wire, call), json=body,
                                                 headers=self._headers(relay, wire, call))
            response = self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the provider: nothing to pay
            self._failed(relay, wire, call, reservation, ProviderError("connection", str(exc)), charged=False)
            return
        except httpx.TimeoutException as exc:
            self._failed(relay, wire, call, reservation, ProviderError("timeout", str(exc)), charged=True)
            return
        except httpx.HTTPError as exc:  # the request may have reached the provider: charged at its reservation
            self._failed(relay, wire, call, reservation, ProviderError("connection", str(exc)), charged=True)
            return
        finally:
            relay.upstream_done()
        try:
            self._relay(relay, wire, call, reservation, response, wire.streamed(body))
        finally:
            response.close()

    def _relay(self, relay: Relay, wire: Wire, call: PendingCall, reservation: Reservation,
               response: httpx.Response, stream: bool) -> None:
        import httpx

        try:
            if response.status_code >= 400:
                self._upstream_error(relay, call, reservation, response)
            elif stream:
                self._relay_stream(relay, wire, call, reservation, response)
            else:
                self._relay_body(relay, wire, call, reservation, response)
        except httpx.HTTPError as exc:  # the reply broke off after the provider started it: charged
            self._failed(relay, wire, call, reservation, ProviderError("connection", str(exc)), charged=True)

    def _upstream_error(self, relay: Relay, call: PendingCall, reservation: Reservation,
                        response: httpx.Response) -> None:
        """The provider refused (429, 5xx, 4xx): nothing billed, the reservation is released."""
        data = relay.timed(response.read)
        error = ProviderError(_status_kind(response.status_code),  # type: ignore[arg-type]
                              f"upstream answered {response.status_code}: {data[:300].decode(errors='replace')}")
        self.gateway.settle_failed(call, reservation, error, charged=False)
        relay.send(response.status_code, data, response.headers.get("content-type", "application/json"))

    def _failed(self, relay: Relay, wire: Wire, call: PendingCall, reservation: Reservation,
                error: ProviderError, *, charged: bool) -> None:
        self.gateway.settle_failed(call, reservation, error, charged)
        status = 504 if error.kind == "timeout" else 502
        relay.error(wire, status, "api_error", f"agentsprint proxy: the upstream failed: {error}")

    def _relay_body(self, relay: Relay, wire: Wire, call: PendingCall, reservation: Reservation,
                    response: httpx.Response) -> None:
        data = relay.timed(response.read)
        try:
            reply = json.loads(data)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._settle(call, reservation, wire, None, {})  # the provider may have billed: charged in full
            relay.error(wire, 502, "api_error", "agentsprint proxy: the upstream's reply is not JSON "
                                                "(charged at its reservation)")
            return
        self._settle(call, reservation, wire, wire.usage(reply), reply)
        relay.send(200, data, response.headers.get("content-type", "application/json"))

    def _relay_stream(self, relay: Relay, wire: Wire, call: PendingCall, reservation: Reservation,
                      response: httpx.Response) -> None:
        usage: Usage | None = None
        relay.start_stream(response.headers.get("content-type", "text/event-stream"))
        complete = True
        try:
            for line in relay.timed_iter(response.iter_lines()):
                event = sse_events(line.encode())
                usage = wire.stream_usage(event, usage) if event is not None else usage
                complete = relay.write_line(line) and complete
        finally:
            self._settle(call, reservation, wire, usage if complete else None, {})

    def _settle(self, call: PendingCall, reservation: Reservation, wire: Wire, usage: Usage | None,
                reply: dict[str, Any]) -> None:
        """Settle from `usage`; without it, the gateway charges the reservation (never a silent zero)."""
        from agentsprint.llm.provider import ProviderResult

        found = usage or Usage(0, 0, 0)
        result = ProviderResult(
            content=None, tool_calls=[], finish_reason=None, model=str(reply.get("model") or call.model),
            input_tokens=found.input_tokens, cached_input_tokens=found.cached_input_tokens,
            output_tokens=found.output_tokens, raw=reply, usage_reported=usage is not None)
        self.gateway.settle(call, reservation, result, 0.0)


class ProxyHandler(BaseHTTPRequestHandler):
    """Routes a request by path to its protocol and hands it to the proxy."""

    protocol_version = "HTTP/1.1"
    server_version = "agentsprint-proxy/1"
    disable_nagle_algorithm = True

    @property
    def owner(self) -> MeteringProxy:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every call is recorded in model_calls instead."""

    def do_POST(self) -> None:
        started = time.perf_counter()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        relay = Relay(self)
        if is_count_tokens(self.path):
            self._count_tokens(relay, raw)
            return
        wire = wire_for(self.path)
        if wire is None:
            relay.error(CHAT, 404, "not_found_error", f"agentsprint proxy: no route {self.path}")
            return
        grant = self.owner.grant_of(self.headers, self.path)
        if grant is None:
            relay.error(wire, 401, "authentication_error", "agentsprint proxy: unknown or revoked token")
            return
        self.owner.serve(relay, wire, grant, raw)
        self.owner.handling_seconds.append(time.perf_counter() - started - relay.upstream_seconds)

    def _count_tokens(self, relay: Relay, raw: bytes) -> None:
        grant = self.owner.grant_of(self.headers)
        if grant is None:
            relay.error(ANTHROPIC, 401, "authentication_error", "agentsprint proxy: unknown or revoked token")
            return
        self.owner.count_tokens(relay, grant, raw)
