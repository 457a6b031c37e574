"""The metering proxy with real HTTP on both sides: a fake agent CLI, the scripted server, real SQLite."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from pathlib import Path

import pytest
from conftest import postgres_url
from proxy_support import PROTOCOLS, agent_env, post, proxy_gateway, run_fake_agent

from agentsprint.llm.context import CallContext
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.store import Store
from agentsprint.store.ledger import model_calls

CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=2, scopes=["item:AS-1", "sprint:S1"])
CHAT_BODY = {"model": "gpt-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def spent_tokens(gateway: Gateway, scope: str) -> int:
    state = gateway.spend(scope)
    return state.spent_tokens + state.reserved_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_growing_context_stops_at_the_budget(protocol: str, stream: bool, gateway: Gateway,
                                             proxy: MeteringProxy, tmp_path: Path) -> None:
    gateway.ensure_budget("item:AS-1", tokens=4000, usd=None)
    grant = proxy.grant(CODER)
    log = run_fake_agent(tmp_path, agent_env(proxy, grant), "--protocol", protocol, *(["--stream"] if stream else []))
    ok = [entry for entry in log if entry["status"] == 200]
    assert len(ok) >= 3, log
    refusal = log[-1]
    assert refusal["status"] == 400
    shape = refusal["body"]["error"] if protocol != "anthropic-messages" else refusal["body"]["error"]
    assert "budget item:AS-1 exhausted" in shape["message"]
    if protocol == "anthropic-messages":
        assert refusal["body"]["type"] == "error"
    calls = model_calls(gateway.store, "AS-1")
    assert [c.outcome for c in calls] == ["ok"] * len(ok) + ["refused"]
    assert all((c.round, c.role) == (2, "coder") for c in calls)
    assert all(json.loads(c.attributes_json)["agentsprint.cost"] == "measured" for c in calls[:-1])
    assert spent_tokens(gateway, "item:AS-1") <= 4000
    assert gateway.spend("item:AS-1").reserved_tokens == 0
    assert sum(c.input_tokens + c.output_tokens for c in calls) == spent_tokens(gateway, "item:AS-1")


def test_max_tokens_is_lowered_to_what_is_left(gateway: Gateway, proxy: MeteringProxy,
                                               scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=60, usd=None)
    grant = proxy.grant(CODER)
    status, _ = post(f"{proxy.base_url}/chat/completions", json.dumps(CHAT_BODY).encode(),
                     {"Authorization": f"Bearer {grant.token}"})
    assert status == 200
    [sent] = scripted_server.requests["coder-model"]
    [call] = model_calls(gateway.store, "AS-1")
    assert sent["max_tokens"] == call.granted_max_tokens < 100
    assert sent["model"] == "coder-model"


def test_an_agent_that_keeps_calling_after_refusals_is_stopped(gateway: Gateway, store: Store,
                                                              tmp_path: Path) -> None:
    gateway.ensure_budget("item:AS-1", tokens=5, usd=None)
    stopped: list[str] = []
    with MeteringProxy(gateway, max_refusals=2) as proxy:
        grant = proxy.grant(CODER, on_stop=stopped.append)
        log = run_fake_agent(tmp_path, agent_env(proxy, grant), "--ignore-refusals", "--calls", "5")
    assert [entry["status"] for entry in log] == [400, 400, 400, 403, 403]
    assert "kept calling after 2 budget refusals" in log[2]["body"]["error"]["message"]
    assert len(stopped) == 1 and grant.stopped == stopped[0]
    assert [c.outcome for c in model_calls(store, "AS-1")] == ["refused"] * 3


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_concurrent_agents_never_overspend_the_sprint(backend: str, scripted_server: ScriptedServer,
                                                            tmp_path: Path) -> None:
    store = Store(postgres_url()) if backend == "postgres" else Store(f"sqlite:///{tmp_path / 'race.db'}")
    gateway = proxy_gateway(scripted_server, store)
    sprint = f"sprint:{uuid.uuid4().hex[:8]}"
    gateway.ensure_budget(sprint, tokens=12000, usd=None)
    logs: dict[int, list[dict[str, object]]] = {}

    def agent(proxy: MeteringProxy, index: int) -> None:
        ctx = CallContext(role="coder", item_id=f"{sprint}-{index}", round=1,
                          scopes=[f"item:{sprint}-{index}", sprint])
        workdir = tmp_path / f"agent{index}"
        workdir.mkdir()
        logs[index] = run_fake_agent(workdir, agent_env(proxy, proxy.grant(ctx)), "--protocol", PROTOCOLS[index % 3],
                                     *(["--stream"] if index % 2 else []))

    with MeteringProxy(gateway) as proxy:
        threads = [threading.Thread(target=agent, args=(proxy, index)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(logs) == list(range(8))
    assert all(log[-1]["status"] == 400 for log in logs.values())
    assert sum(len(log) for log in logs.values()) > 16
    state = gateway.spend(sprint)
    rows = [c for c in model_calls(store) if sprint in json.loads(c.scopes_json or "[]")]
    store.close()
    assert state.reserved_tokens == 0
    assert state.spent_tokens <= 12000
    assert state.spent_tokens == sum(c.input_tokens + c.output_tokens for c in rows)
    assert len(rows) == sum(len(log) for log in logs.values())


@pytest.mark.parametrize("status", [429, 500])
def test_upstream_errors_are_passed_on_and_charge_nothing(status: int, gateway: Gateway, proxy: MeteringProxy,
                                                          scripted_server: ScriptedServer) -> None:
    scripted_server.add("coder-model", ScriptedReply(status=status))
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    grant = proxy.grant(CODER)
    answer, body = post(f"{proxy.base_url}/messages", json.dumps(CHAT_BODY).encode(), {"x-api-key": grant.token})
    assert answer == status and body["type"] == "error"
    [call] = model_calls(gateway.store, "AS-1")
    assert call.outcome == "error" and f"upstream answered {status}" in (call.error or "")
    assert (call.input_tokens, call.output_tokens, call.usd) == (0, 0, 0.0)
    assert spent_tokens(gateway, "item:AS-1") == 0


def test_a_garbage_reply_is_charged_once_at_its_reservation(gateway: Gateway, proxy: MeteringProxy,
                                                            scripted_server: ScriptedServer) -> None:
    scripted_server.add("coder-model", ScriptedReply(garbage=True))
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    grant = proxy.grant(CODER)
    answer, body = post(f"{proxy.base_url}/responses",
                        json.dumps({"model": "m", "input": "hi", "max_output_tokens": 50}).encode(),
                        {"Authorization": f"Bearer {grant.token}"})
    assert answer == 502 and "not JSON" in body["error"]["message"]
    [call] = model_calls(gateway.store, "AS-1")
    assert json.loads(call.attributes_json)["agentsprint.cost"] == "estimated"
    assert call.output_tokens == 50
    assert spent_tokens(gateway, "item:AS-1") == call.input_tokens + 50


@pytest.mark.parametrize("raw, needle", [(b"{not json", "not JSON"), (b"[1]", "JSON object"),
                                         (b'{"messages": "hi"}', "'messages' must be a list"),
                                         (b'{"messages": [], "max_tokens": -1}', "positive integer")])
def test_an_unreadable_request_is_refused_before_any_charge(raw: bytes, needle: str, gateway: Gateway,
                                                            proxy: MeteringProxy,
                                                            scripted_server: ScriptedServer) -> None:
    grant = proxy.grant(CODER)
    status, body = post(f"{proxy.base_url}/chat/completions", raw, {"Authorization": f"Bearer {grant.token}"})
    assert status == 400 and needle in body["error"]["message"]
    assert model_calls(gateway.store) == [] and scripted_server.requests == {}


def test_unknown_or_revoked_tokens_are_refused(gateway: Gateway, proxy: MeteringProxy) -> None:
    grant = proxy.grant(CODER)
    proxy.revoke(grant.token)
    status, body = post(f"{proxy.base_url}/messages", json.dumps(CHAT_BODY).encode(), {"x-api-key": grant.token})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert model_calls(gateway.store) == []


def test_an_upstream_timeout_is_charged_once_at_its_reservation(scripted_server: ScriptedServer,
                                                                store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="late", hang=5))
    gateway = proxy_gateway(scripted_server, store, run={"call_timeout": "1s"})
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    with MeteringProxy(gateway) as proxy:
        grant = proxy.grant(CODER)
        status, body = post(f"{proxy.base_url}/chat/completions", json.dumps(CHAT_BODY).encode(),
                            {"Authorization": f"Bearer {grant.token}"})
    assert status == 504 and "timeout" in body["error"]["message"]
    [call] = model_calls(store, "AS-1")
    assert call.outcome == "error" and call.output_tokens == 100
    assert spent_tokens(gateway, "item:AS-1") == call.input_tokens + 100


def test_an_unreachable_upstream_charges_nothing(scripted_server: ScriptedServer, store: Store) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gateway = proxy_gateway(scripted_server, store, models={"coder": {"api_base": f"http://127.0.0.1:{closed}/v1"}})
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    with MeteringProxy(gateway) as proxy:
        grant = proxy.grant(CODER)
        status, body = post(f"{proxy.base_url}/messages", json.dumps(CHAT_BODY).encode(), {"x-api-key": grant.token})
    assert status == 502 and body["type"] == "error"
    [call] = model_calls(store, "AS-1")
    assert call.outcome == "error" and (call.input_tokens, call.output_tokens) == (0, 0)
    assert spent_tokens(gateway, "item:AS-1") == 0


@pytest.mark.parametrize("wait, settled", [(30.0, True), (0.0, False)], ids=["waited", "not-waited"])
def test_revoking_a_token_waits_for_its_calls_in_flight_to_settle(wait: float, settled: bool,
                                                                  scripted_server: ScriptedServer,
                                                                  gateway: Gateway, proxy: MeteringProxy) -> None:
    """An agent may exit before its last call is settled (a stream is settled after its last line):
    the round's spend is read only once the proxy has settled what the agent sent."""
    scripted_server.add("coder-model", ScriptedReply(content="late", latency=1.0))
    grant = proxy.grant(CODER)
    caller = threading.Thread(target=post, args=(f"{proxy.base_url}/chat/completions", json.dumps(CHAT_BODY).encode(),
                                                 {"Authorization": f"Bearer {grant.token}"}))
    caller.start()
    while not model_calls(gateway.store, "AS-1"):  # reserved: the call is in flight upstream
        threading.Event().wait(0.02)
    proxy.revoke(grant.token, settle_seconds=wait)
    outcomes = [call.outcome for call in model_calls(gateway.store, "AS-1")]
    caller.join()
    assert outcomes == (["ok"] if settled else ["reserved"])
