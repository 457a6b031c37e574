"""`backend = "command"`: the user's own command line, with {prompt_file} where the prompt's path goes."""

from __future__ import annotations

import shlex
from pathlib import Path

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest


def command_argv(template: str, prompt_file: Path) -> list[str]:
    """The command line of `template` with {prompt_file} replaced (no shell: quoting as in a shell)."""
    return [word.replace("{prompt_file}", str(prompt_file)) for word in shlex.split(template)]


class CommandBackend(AgentBackend):
    name = "command"
    protocol = "any (the proxy answers OpenAI Chat Completions, OpenAI Responses and Anthropic Messages)"

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        return AgentLaunch(argv=command_argv(request.executable, request.prompt_file))

    def version_argv(self, executable: str) -> list[str]:
        return []
