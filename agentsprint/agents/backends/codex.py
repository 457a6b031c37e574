"""`backend = "codex"`: OpenAI's Codex CLI (`codex exec`) headless, its model calls through the proxy.

The built-in `openai` provider of Codex ignores a base URL from its config, so the round's
`$CODEX_HOME/config.toml` defines a provider of its own, `agentsprint`: the proxy's `/v1` and the
Responses API, the round's token read from `AGENTSPRINT_PROXY_TOKEN`. The same file turns off what
phones home (update check, analytics, feedback, the plugin and app catalogues that clone from GitHub
and call chatgpt.com, web search, model discovery). Codex's own sandbox and approvals are off: the
runner's bubblewrap sandbox is the boundary; the commands Codex runs do not see the token. Codex has
no budget cap of its own (the proxy is the cap).
"""

from __future__ import annotations

import json
from pathlib import Path

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest, json_lines

TOKEN_ENV = "AGENTSPRINT_PROXY_TOKEN"
"""The variable the `agentsprint` provider reads its key from (Codex's `env_key`)."""
CODEX_DIR = ".codex"
"""$CODEX_HOME inside the round's private home: config, session logs, Codex's own databases."""
PROMPT_ARG_LIMIT = 100_000
"""Bytes of prompt passed on the command line; a longer prompt is read from its file by the agent."""
FEATURES_OFF = (
    "plugins", "remote_plugin", "plugin_sharing", "apps", "api_key_model_discovery", "in_app_updates",
    "daemon_auto_start", "tool_suggest", "skill_mcp_dependency_install", "image_generation", "computer_use",
    "browser_use", "browser_use_external", "in_app_browser", "goals", "unbounded_connection_retries",
)
"""Codex features that reach services other than the model, or that an unattended round does not use
(unbounded retries: with the proxy unreachable Codex would wait for the network until the time limit)."""


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text)


def config_toml(request: LaunchRequest) -> str:
    """The round's `$CODEX_HOME/config.toml`: the proxy as the model provider, phone-home features off."""
    features = "".join(f"{name} = false\n" for name in FEATURES_OFF)
    return (f"model = {_toml(request.model_name)}\n"
            'model_provider = "agentsprint"\n'
            "check_for_update_on_startup = false\n"
            'web_search = "disabled"\n\n'
            "[model_providers.agentsprint]\n"
            'name = "agentsprint metering proxy"\n'
            f"base_url = {_toml(request.proxy_root + '/v1')}\n"
            f'env_key = "{TOKEN_ENV}"\n'
            'wire_api = "responses"\n\n'
            "[analytics]\nenabled = false\n\n"
            "[feedback]\nenabled = false\n\n"
            "[agents]\nenabled = false\n\n"
            '[shell_environment_policy]\nexclude = ["AGENTSPRINT_*", "OPENAI_*", "ANTHROPIC_*"]\n\n'
            f"[features]\n{features}")


def prompt_arg(request: LaunchRequest) -> str:
    """The prompt itself, or (past the command-line limit) where to read it."""
    if len(request.prompt.encode()) <= PROMPT_ARG_LIMIT:
        return request.prompt
    return f"Your task is in the file {request.prompt_file}: read all of it first, then do it."


def session_log(home: Path) -> Path | None:
    """The newest rollout log Codex wrote under $CODEX_HOME/sessions (None: it wrote none)."""
    logs = sorted((home / CODEX_DIR / "sessions").glob("**/rollout-*.jsonl"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def _trimmed(line: str) -> str:
    """A rollout line without the session header's copy of Codex's own system prompt."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    payload = record.get("payload") if isinstance(record, dict) else None
    if record.get("type") != "session_meta" or not isinstance(payload, dict):
        return line
    payload.pop("base_instructions", None)
    return json.dumps(record)


class CodexBackend(AgentBackend):
    name = "codex"
    executable = "codex"
    protocol = "openai-responses"

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        """`codex exec --json` in the worktree, no inner sandbox, no approvals, the proxy as provider."""
        argv = [request.executable, "exec", "--json", "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox", "-m", request.model_name, "--", prompt_arg(request)]
        env = {"CODEX_HOME": str(request.home / CODEX_DIR), TOKEN_ENV: request.token}
        return AgentLaunch(argv=argv, env=env, files={f"{CODEX_DIR}/config.toml": config_toml(request)})

    def final_message(self, output: str) -> str | None:
        """The text of the last `agent_message` item `codex exec --json` reports."""
        texts = [entry["item"].get("text") for entry in json_lines(output)
                 if entry.get("type") == "item.completed" and isinstance(entry.get("item"), dict)
                 and entry["item"].get("type") == "agent_message"]
        return next((text for text in reversed(texts) if isinstance(text, str) and text.strip()), None)

    def transcript(self, home: Path, output: str) -> str:
        """Codex's rollout log of the round (its system prompt left out), else its JSONL output."""
        log = session_log(home)
        if log is None:
            return output
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(_trimmed(line) for line in lines)
