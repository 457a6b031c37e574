"""A FAKE coding-agent CLI for tests: not Claude Code, Codex or any real agent, and no test of one.

It behaves the way the metering proxy and the `command` coder backend need an external agent to
behave, so both can be tested offline: `fake_agent_cli.py [options] PROMPT_FILE` reads the prompt
file, makes model calls whose context grows with every call (each call resends the conversation so
far plus a new chunk) in the protocol `--protocol` names (openai-chat | openai-responses |
anthropic-messages), streamed with `--stream`, through OPENAI_BASE_URL / ANTHROPIC_BASE_URL with the
key in OPENAI_API_KEY / ANTHROPIC_API_KEY (as the runner sets them). It stops at the first refusal
(an HTTP 4xx) unless `--ignore-refusals`, or after `--calls` calls; then it writes
`fake_agent_log.json` (its calls and their outcomes) into `--log-dir` (default: the current
directory), applies `--replace PATH OLD NEW` edits and `--write PATH TEXT` writes, and exits
with `--exit`. `--sleep S` hangs first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = "Here is more of the repository to read: " + "lorem ipsum dolor sit amet " * 40


def _request(protocol: str, conversation: list[str]) -> tuple[str, dict[str, Any], dict[str, str]]:
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
    url, body, headers = _request(protocol, conversation)
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


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake_agent_cli.py")
    parser.add_argument("prompt_file")
    parser.add_argument("--protocol", default="openai-chat")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--ignore-refusals", action="store_true")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--replace", nargs=3, action="append", default=[], metavar=("PATH", "OLD", "NEW"))
    parser.add_argument("--log-dir", default=".")
    parser.add_argument("--write", nargs=2, action="append", default=[], metavar=("PATH", "TEXT"),
                        help="write TEXT to PATH (anywhere: the sandbox decides what is writable)")
    parser.add_argument("--home-file", nargs=2, action="append", default=[], metavar=("NAME", "TEXT"),
                        help="write TEXT to $HOME/NAME (the agent's own state, as real agents keep it)")
    parser.add_argument("--say", action="append", default=[], help="print this line")
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the fake agent."""
    options = _options(argv)
    time.sleep(options.sleep)
    conversation, log = [Path(options.prompt_file).read_text(encoding="utf-8")], []
    for _ in range(options.calls):
        outcome = _call(options.protocol, conversation, options.stream)
        log.append(outcome)
        if outcome["status"] >= 400 and not options.ignore_refusals:
            break
        conversation.append(CHUNK)
    Path(options.log_dir, "fake_agent_log.json").write_text(json.dumps(log), encoding="utf-8")
    for path, old, new in options.replace:
        target = Path(path)
        target.write_text(target.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    for path, text in options.write:
        Path(path).write_text(text, encoding="utf-8")
    for name, text in options.home_file:
        target = Path(os.environ["HOME"], name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"fake agent: wrote {target}")
    for line in options.say:
        print(line)
    print(f"fake agent: {len(log)} calls, last status {log[-1]['status'] if log else None}")
    return int(options.exit)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
