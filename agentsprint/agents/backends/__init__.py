"""External agent backends: how each agent CLI is started headless against the metering proxy.

A backend turns a `LaunchRequest` (the executable, the round's prompt, a private home folder, the
proxy's address and the run's token, the role's model, what is left of the item's USD) into an
`AgentLaunch`: the command line, the environment added to the scrubbed one, and the configuration
files written into the private home before the agent starts. The runner does the rest the same way
for every backend (agents/external.py): sandbox, time limit, process group, transcript, commit, gates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class LaunchRequest(BaseModel):
    """What the runner knows when it starts an agent for one round."""

    model_config = ConfigDict(frozen=True)

    executable: str
    """The `command` setting, else the backend's default executable name (looked up on PATH)."""
    prompt_file: Path
    prompt: str
    home: Path
    """A private, writable folder that is the agent's $HOME for this round (config, sessions, logs)."""
    proxy_root: str
    """The metering proxy without a path: http://127.0.0.1:PORT (OpenAI-style bases add /v1)."""
    token: str
    """The proxy token of this round: the agent's API key."""
    model: str
    """The role's litellm model string ("anthropic/claude-sonnet-4-5"); the proxy sends it upstream."""
    usd_left: float | None = None
    """What is left of the item's USD budget when the round starts (None: no USD budget)."""

    @property
    def model_name(self) -> str:
        """The model without litellm's provider prefix."""
        return self.model.split("/", 1)[1] if "/" in self.model else self.model


class AgentLaunch(BaseModel):
    """How to start the agent: argv, environment added to the scrubbed one, files written under home."""

    model_config = ConfigDict(frozen=True)

    argv: list[str]
    env: dict[str, str] = {}
    files: dict[str, str] = {}
    """Path relative to the private home -> text, written before the agent starts."""


class AgentBackend:
    """One agent CLI. Subclasses set the class attributes and override `launch` (and `transcript`)."""

    name: str = ""
    executable: str = ""
    """The default executable name, looked up on PATH."""
    protocol: str = ""
    """The API the agent speaks to the proxy (docs): openai-chat, openai-responses, anthropic-messages, gemini."""

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        raise NotImplementedError

    def version_argv(self, executable: str) -> list[str]:
        """The command that prints the agent's version (`llm test`)."""
        return [executable, "--version"]

    def budget_stop(self, output: str) -> str | None:
        """Why the agent stopped itself at its own budget cap (its output says so), else None: the item then
        escalates with reason `budget` instead of being dead-lettered for a non-zero exit."""
        return None

    def final_message(self, output: str) -> str | None:
        """The agent's last answer in its console output (its machine-readable output format), for the
        round's coder summary that QA reads; None: the output's tail stands in."""
        return None

    def transcript(self, home: Path, output: str) -> str:
        """The agent's own record of the round, kept (redacted, capped) in the round and the escalation
        package: by default its console output; backends that write a session log return that."""
        return output


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects of an agent's JSON-lines output, in order (other lines skipped)."""
    found = []
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found
