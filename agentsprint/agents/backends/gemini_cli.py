"""`backend = "gemini-cli"`: Gemini CLI (`gemini`) headless, its Gemini API calls sent to the metering proxy.

Gemini CLI has no USD cap of its own: the proxy's reservations, the item's time limit and the refusal
stop are what bound it (docs/agents/gemini_cli.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest

SETTINGS = {
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False,
                "checkpointing": {"enabled": False}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False, "logPrompts": False},
    "ide": {"enabled": False},
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "tools": {"exclude": ["web_fetch", "google_web_search"]},
}
"""~/.gemini/settings.json in the agent's private home: API-key auth, every phone-home feature off, no
web tools (they would reach the network outside the proxy)."""


class GeminiCliBackend(AgentBackend):
    """Gemini CLI in yolo mode, its state and settings in the private home, its key the proxy token."""

    name = "gemini-cli"
    executable = "gemini"
    protocol = "gemini"

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        """`gemini -p PROMPT --approval-mode yolo -m MODEL --output-format json`, pointed at the proxy."""
        argv = [request.executable, "--prompt", request.prompt, "--approval-mode", "yolo",
                "--model", request.model_name, "--output-format", "json"]
        env = {"GOOGLE_GEMINI_BASE_URL": request.proxy_root, "GEMINI_API_KEY": request.token,
               "GEMINI_CLI_TRUST_WORKSPACE": "true"}
        return AgentLaunch(argv=argv, env=env, files={".gemini/settings.json": json.dumps(SETTINGS, indent=2)})

    def final_message(self, output: str) -> str | None:
        """The `response` of the JSON object `--output-format json` prints."""
        start = output.find("{")
        try:
            value = json.loads(output[start:]) if start >= 0 else None
        except ValueError:
            return None
        text = value.get("response") if isinstance(value, dict) else None
        return text if isinstance(text, str) and text.strip() else None

    def transcript(self, home: Path, output: str) -> str:
        """The session log Gemini CLI keeps under ~/.gemini/tmp/<project>/chats, else its output."""
        logs = sorted((home / ".gemini" / "tmp").glob("*/chats/session-*.json*"), key=lambda p: p.stat().st_mtime)
        return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in logs) or output
