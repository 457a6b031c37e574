"""`backend = "opencode"`: OpenCode (`opencode run`) headless, its one provider the metering proxy.

OpenCode reads a generated `opencode.json` (OPENCODE_CONFIG) whose only provider, "agentsprint", is
the proxy's OpenAI-compatible endpoint with the round's token as its key. Everything OpenCode would
fetch from the internet is turned off: the models.dev catalogue, the autoupdate check, session
sharing, LSP downloads, external and default plugins, and the npm install of `@opencode-ai/plugin`
into its config folder (a lockfile written here says it is already there; with plugins off it is
never loaded). Project config (the worktree's own `opencode.json` and `.opencode/`) is ignored, so
the repository under work cannot point OpenCode at another endpoint or grant itself other tools.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest, json_lines

PROVIDER = "agentsprint"
SESSION_DB = Path(".local/share/opencode/opencode.db")
"""OpenCode's own session store under its home (XDG_DATA_HOME/opencode)."""
CONFIG_FILE = "opencode.json"
MESSAGE = ["Do", "the", "task", "described", "in", "the", "attached", "file."]
"""The message of `opencode run`, one word an argument: OpenCode quotes (and escapes the quotes of) any
argument holding a space, so the prompt itself goes in as an attached file, unchanged."""
PLUGIN = "@opencode-ai/plugin"

ENV = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",  # no models.dev catalogue download
    "OPENCODE_DISABLE_AUTOUPDATE": "1",  # no release check
    "OPENCODE_DISABLE_SHARE": "1",  # no session sharing to opncd.ai
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",  # no language-server downloads
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",  # no built-in auth plugins
    "OPENCODE_PURE": "1",  # no external (npm) plugins
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",  # the worktree's opencode.json / .opencode are not read
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",  # no ~/.claude prompts or skills
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",  # no skill scans outside the config
    "OPENCODE_DISABLE_TERMINAL_TITLE": "1",
}
"""Environment OpenCode reads to turn its phone-home features off."""


def opencode_config(request: LaunchRequest) -> dict[str, Any]:
    """The generated opencode.json: the proxy as the only provider, every prompt allowed, nothing shared."""
    name = request.model_name
    provider = {"npm": "@ai-sdk/openai-compatible", "name": "agentsprint metering proxy",
                "options": {"baseURL": f"{request.proxy_root}/v1", "apiKey": request.token},
                "models": {name: {"name": name}}}
    return {"$schema": "https://opencode.ai/config.json", "provider": {PROVIDER: provider},
            "enabled_providers": [PROVIDER], "model": f"{PROVIDER}/{name}", "small_model": f"{PROVIDER}/{name}",
            "autoupdate": False, "share": "disabled", "snapshot": False, "lsp": False, "formatter": False,
            "permission": {"*": "allow", "webfetch": "deny", "websearch": "deny", "question": "deny"}}


def plugin_files(version: str) -> dict[str, str]:
    """Files in OpenCode's config folder that make it skip its npm install of `@opencode-ai/plugin`.

    OpenCode installs that package into each config folder unless the folder's lockfile already lists
    it and node_modules exists; with plugins off nothing imports it, so no download is needed."""
    folder = ".config/opencode"
    lock = {"lockfileVersion": 3, "packages": {"": {"dependencies": {PLUGIN: version}}}}
    return {f"{folder}/package.json": json.dumps({"dependencies": {PLUGIN: version}}),
            f"{folder}/package-lock.json": json.dumps(lock), f"{folder}/node_modules/.keep": ""}


class OpenCodeBackend(AgentBackend):
    name = "opencode"
    executable = "opencode"
    protocol = "openai-chat"
    version = "1.18.33"
    """The OpenCode release this adapter is tested with (.ci/agents/package.json)."""

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        """`opencode run` with the prompt, JSON events on stdout, the generated config and no phone-home."""
        argv = [request.executable, "run", *MESSAGE, "--format", "json", "--auto", "--title", "agentsprint",
                "-m", f"{PROVIDER}/{request.model_name}", "--file", str(request.prompt_file)]  # --file last: greedy
        files = {CONFIG_FILE: json.dumps(opencode_config(request), indent=2), **plugin_files(self.version)}
        return AgentLaunch(argv=argv, env={**ENV, "OPENCODE_CONFIG": str(request.home / CONFIG_FILE)},
                           files=files)

    def final_message(self, output: str) -> str | None:
        """The last text part of `opencode run --format json`'s events."""
        texts = [entry["part"].get("text") for entry in json_lines(output)
                 if entry.get("type") == "text" and isinstance(entry.get("part"), dict)]
        return next((text for text in reversed(texts) if isinstance(text, str) and text.strip()), None)

    def transcript(self, home: Path, output: str) -> str:
        """OpenCode's session log (its SQLite store in home) as JSON lines, else its JSON event output."""
        return session_log(home / SESSION_DB) or output


def session_log(path: Path) -> str:
    """Every message part OpenCode stored, in order, one JSON object a line, each message's error after
    its parts ("" when there is no store)."""
    if not path.is_file():
        return ""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            messages = conn.execute("SELECT id, data FROM message ORDER BY time_created, id").fetchall()
            parts = conn.execute("SELECT message_id, data FROM part ORDER BY time_created, id").fetchall()
    except sqlite3.Error:
        return ""
    return "\n".join(line for message_id, data in messages for line in _lines(json.loads(data), [
        json.loads(part) for owner, part in parts if owner == message_id]))


def _lines(message: dict[str, Any], parts: list[dict[str, Any]]) -> list[str]:
    """One message's parts (and its error) as JSON lines tagged with the message's role."""
    role = message.get("role")
    lines = [json.dumps({"role": role, **part}) for part in parts]
    if message.get("error"):
        lines.append(json.dumps({"role": role, "type": "error", "error": message["error"]}))
    return lines
