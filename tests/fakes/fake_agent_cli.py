"""A FAKE coding-agent CLI for tests: not Claude Code, Codex or any real agent, and no test of one.

It behaves the way the proxy needs an external agent to behave, so the metering proxy and the
`command` coder backend can be tested offline: it reads the prompt file given as its argument, makes
model calls whose context grows with every call (each call sends the whole conversation so far plus
a new chunk), speaking the protocol named by FAKE_AGENT_PROTOCOL (openai-chat | openai-responses |
anthropic-messages), streamed when FAKE_AGENT_STREAM=1, through OPENAI_BASE_URL / ANTHROPIC_BASE_URL
with the key in OPENAI_API_KEY / ANTHROPIC_API_KEY. It stops at the first refusal (an HTTP 4xx)
unless FAKE_AGENT_IGNORE_REFUSALS=1, or after FAKE_AGENT_CALLS calls. Then it writes
`fake_agent_log.json` into the current directory (its calls and their outcomes) and edits
`FAKE_AGENT_EDIT` (a path relative to the current directory) when set. FAKE_AGENT_EXIT sets its exit
status; FAKE_AGENT_SLEEP makes it hang that many seconds first.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = "Here is more of the repository to read: " + "lorem ipsum dolor sit amet " * 40


def _request(protocol: str, conversation: list[str], stream: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    messages = [{"role": "user", "content": text} for text in conversation]
    if protocol == "anthropic-messages":
        base, key = os.environ["ANTHROPIC_BASE_URL"].rstrip("/"), os.environ["ANTHROPIC_API_KEY"]
        body = {"model": "claude-x", "max_tokens": 200, "system": "You are a fake agent.", "messages": messages}
        return f"{base}/v1/messages", body, {"x-api-key": key, "anthropic-version": "2023-06-01"}
    base, key = os.environ["OPENAI_BASE_URL"].rstrip("/"), os.environ["OPENAI_API_KEY"]
    headers = {"Authorization": f"Bearer {key}"}
    if protocol == "openai-responses":
        body = {"model": "gpt-x", "instructions": "You are a fake agent.", "input": messages,
                "max_output_tokens": 200}
        return f"{base}/responses", body, headers
    body = {"model": "gpt-x", "max_tokens": 200, "messages": [{"role": "system", "content": "You are a fake agent."},
                                                              *messages]}
    return f"{base}/chat/completions", body, headers


def _call(protocol: str, conversation: list[str], stream: bool) -> dict[str, Any]:
    url, body, headers = _request(protocol, conversation, stream)
    if stream:
        body["stream"] = True
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return {"status": response.status, "stream_lines": text.count("data:") if stream else 0,
                    "body": None if stream else json.loads(text)}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": json.loads(exc.read().decode() or "null")}


def main(argv: list[str]) -> int:
    """Run the fake agent on the prompt file `argv[0]`."""
    time.sleep(float(os.environ.get("FAKE_AGENT_SLEEP", "0")))
    prompt = Path(argv[0]).read_text(encoding="utf-8")
    protocol = os.environ.get("FAKE_AGENT_PROTOCOL", "openai-chat")
    stream = os.environ.get("FAKE_AGENT_STREAM") == "1"
    ignore = os.environ.get("FAKE_AGENT_IGNORE_REFUSALS") == "1"
    conversation, log = [prompt], []
    for _ in range(int(os.environ.get("FAKE_AGENT_CALLS", "50"))):
        outcome = _call(protocol, conversation, stream)
        log.append(outcome)
        if outcome["status"] >= 400 and not ignore:
            break
        conversation.append(CHUNK)
    Path("fake_agent_log.json").write_text(json.dumps(log), encoding="utf-8")
    if os.environ.get("FAKE_AGENT_EDIT"):
        Path(os.environ["FAKE_AGENT_EDIT"]).write_text(f"edited after {len(log)} calls\n", encoding="utf-8")
    return int(os.environ.get("FAKE_AGENT_EXIT", "0"))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
