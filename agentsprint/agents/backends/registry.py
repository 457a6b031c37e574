"""Every external agent backend by its `backend` name in `[models.<role>]`."""

from __future__ import annotations

from agentsprint.agents.backends import AgentBackend
from agentsprint.agents.backends.aider import AiderBackend
from agentsprint.agents.backends.command import CommandBackend

BACKENDS: dict[str, AgentBackend] = {
    backend.name: backend
    for backend in (
        CommandBackend(),
        AiderBackend(),
    )
}
