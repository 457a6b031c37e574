"""Every external agent backend by its `backend` name in `[models.<role>]`."""

from __future__ import annotations

from agentsprint.agents.backends import AgentBackend
from agentsprint.agents.backends.aider import AiderBackend
from agentsprint.agents.backends.claude_code import ClaudeCodeBackend
from agentsprint.agents.backends.codex import CodexBackend
from agentsprint.agents.backends.command import CommandBackend
from agentsprint.agents.backends.gemini_cli import GeminiCliBackend
from agentsprint.agents.backends.opencode import OpenCodeBackend

BACKENDS: dict[str, AgentBackend] = {
    backend.name: backend
    for backend in (
        CommandBackend(),
        AiderBackend(),
        ClaudeCodeBackend(),
        CodexBackend(),
        GeminiCliBackend(),
        OpenCodeBackend(),
    )
}


def get(name: str) -> AgentBackend:
    """The backend called `name` (config validation keeps unknown names out)."""
    return BACKENDS[name]
