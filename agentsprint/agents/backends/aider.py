"""`backend = "aider"`: Aider (PyPI aider-chat) run once with the round's prompt, headless, against the proxy.

Aider talks to models through litellm: OpenAI Chat Completions to the proxy's /v1 for every model, or
Anthropic Messages to the proxy's root for an `anthropic/` role model. Its edits are SEARCH/REPLACE
(or whole-file) blocks in the model's reply, which Aider applies itself; it exposes no usage of its
own, so the proxy's records are the only figures. Every file Aider keeps (chat and input history,
analytics state, model metadata) goes to the private home; the repository map is off because its
cache can only live in the worktree.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest

STATE = ".aider-agentsprint"
"""The folder under the private home holding Aider's files for the round."""
CHAT_HISTORY = f"{STATE}/chat.history.md"
INPUT_HISTORY = f"{STATE}/input.history"
METADATA = f"{STATE}/model-metadata.json"

QUIET_FLAGS = [
    "--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--no-check-update",
    "--no-show-release-notes", "--analytics-disable", "--no-analytics", "--no-show-model-warnings",
    "--no-pretty", "--no-fancy-input", "--no-detect-urls", "--disable-playwright", "--no-notifications",
    "--no-suggest-shell-commands", "--no-auto-lint", "--no-auto-test", "--no-restore-chat-history",
    "--map-tokens", "0", "--no-gui", "--no-watch-files", "--no-stream",
]
"""Headless, every prompt answered yes (the sandbox is the boundary), no commits (the runner commits), no
files in the worktree, and nothing that reaches a network service other than the proxy. No streaming:
nobody watches, and the proxy settles a plain reply before Aider gets it, so the round's figures are
complete when Aider exits (a streamed call settles just after its last line)."""
GIT_IDENTITY = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "aider (agentsprint)",
                "GIT_CONFIG_KEY_1": "user.email", "GIT_CONFIG_VALUE_1": "aider@agentsprint.invalid"}
"""A git identity for Aider: without one it writes a placeholder into the repository's .git/config (which
the sandbox keeps read-only, so it would crash). It never commits: the runner does."""


def litellm_model(request: LaunchRequest) -> str:
    """The model as Aider (litellm) is told it: `anthropic/<name>` speaks Anthropic Messages, any other
    role model is sent as `openai/<name>` (Chat Completions) to the proxy."""
    provider = request.model.split("/", 1)[0] if "/" in request.model else ""
    return f"{'anthropic' if provider == 'anthropic' else 'openai'}/{request.model_name}"


def metadata(model: str) -> str:
    """Model metadata for Aider, so it never downloads litellm's price list to learn about the model."""
    provider = model.split("/", 1)[0]
    return json.dumps({model: {"litellm_provider": provider, "mode": "chat"}}, indent=2)


def endpoint_flags(model: str, request: LaunchRequest) -> list[str]:
    """The flags pointing Aider's provider at the proxy with the round's token as its key (litellm prefers
    OPENAI_BASE_URL to --openai-api-base, so `launch` sets that too)."""
    if model.startswith("anthropic/"):
        return ["--anthropic-api-key", request.token, "--set-env", f"ANTHROPIC_API_BASE={request.proxy_root}"]
    return ["--openai-api-key", request.token, "--openai-api-base", f"{request.proxy_root}/v1"]


class AiderBackend(AgentBackend):
    """Aider run once per round with the round's prompt, its model calls through the metering proxy."""

    name = "aider"
    executable = "aider"
    protocol = "openai-chat (anthropic-messages for an anthropic/ model)"

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        """`aider --message-file PROMPT` with the proxy, the model and every state file in the home."""
        model, home = litellm_model(request), request.home
        argv = [request.executable, "--model", model, "--weak-model", model, "--editor-model", model,
                *endpoint_flags(model, request),
                "--message-file", str(request.prompt_file), *QUIET_FLAGS,
                "--chat-history-file", str(home / CHAT_HISTORY), "--input-history-file", str(home / INPUT_HISTORY),
                "--model-metadata-file", str(home / METADATA)]
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIDER_ANALYTICS": "false", "AIDER_CHECK_UPDATE": "false",
               "OPENAI_BASE_URL": f"{request.proxy_root}/v1", **GIT_IDENTITY}
        return AgentLaunch(argv=argv, env=env, files={METADATA: metadata(model)})

    def transcript(self, home: Path, output: str) -> str:
        """Aider's chat history (the prompt, its replies and what it applied), else its output."""
        log = home / CHAT_HISTORY
        return log.read_text(encoding="utf-8", errors="replace") if log.is_file() else output
