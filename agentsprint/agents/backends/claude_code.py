"""`backend = "claude-code"`: Claude Code (`claude`) in print mode, pointed at the metering proxy.

Headless (`-p`, stream-json output), every permission prompt off (the sandbox is the boundary), the
role's model for the main loop, the background (haiku) calls and subagents alike, all its state in
the private home (`CLAUDE_CONFIG_DIR`), only the settings the runner writes there (the repository's
own `.claude/settings*.json` could point the agent elsewhere), every phone-home feature off, and
`--max-budget-usd` set to what is left of the item's USD. docs/agents/claude_code.md has the details.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentsprint.agents.backends import AgentBackend, AgentLaunch, LaunchRequest, json_lines

CONFIG_DIR = ".claude"
"""Claude Code's config folder, under the private home (`CLAUDE_CONFIG_DIR`)."""
PROMPT_ARG_LIMIT = 100_000
"""Longer prompts are not passed on the command line (Linux caps one argument at 128 KiB): the agent is
told to read the prompt file instead."""
DENIED_TOOLS = ("WebFetch", "WebSearch", "EnterWorktree", "ExitWorktree", "CronCreate", "CronDelete", "CronList",
                "ScheduleWakeup", "RemoteTrigger")
"""Tools the agent may not use: the web (network outside the proxy; web search is billed per search, not per
token), another worktree (its edits would not land in the item's), and scheduling (the run is one shot)."""
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    "DISABLE_INSTALLATION_CHECKS": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
}
"""Phone-home features turned off (docs/agents/claude_code.md): update checks and auto-update, analytics
telemetry, error reports, feedback surveys and /bug, the install-method check, the plugin marketplace
auto-install, the OTel exporter, terminal-title updates; NONESSENTIAL_TRAFFIC is the umbrella switch."""
MODEL_ENV = ("ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
             "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL")
"""Every model Claude Code may pick (main loop, cheap background calls, aliases, subagents): the role's."""
BUDGET_STOP = '"subtype":"error_max_budget_usd"'
"""The result line print mode ends with when `--max-budget-usd` fired."""
MIN_BUDGET_USD = 0.000001
"""The smallest `--max-budget-usd` given: Claude Code refuses 0 ("must be a positive number") and would fail
to start; with nothing left the proxy refuses its first call and the item escalates for budget."""
SETTINGS = {"permissions": {"defaultMode": "bypassPermissions"}}
"""The user settings the runner writes (the only settings source Claude Code reads)."""


def prompt_argument(request: LaunchRequest) -> str:
    """The prompt itself, or for a very long one, where to read it."""
    if len(request.prompt) <= PROMPT_ARG_LIMIT:
        return request.prompt
    return f"Your task is in the file {request.prompt_file}: read all of it, then do it."


def budget_flags(usd_left: float | None) -> list[str]:
    """`--max-budget-usd` at what is left of the item's USD (none without a USD budget)."""
    return [] if usd_left is None else ["--max-budget-usd", f"{max(usd_left, MIN_BUDGET_USD):.6f}"]


class ClaudeCodeBackend(AgentBackend):
    name = "claude-code"
    executable = "claude"
    protocol = "anthropic-messages"

    def launch(self, request: LaunchRequest) -> AgentLaunch:
        """`claude -p PROMPT` headless against the proxy, its state in the private home."""
        argv = [request.executable, "-p", prompt_argument(request), "--output-format", "stream-json", "--verbose",
                "--model", request.model_name, "--dangerously-skip-permissions", "--setting-sources", "user",
                "--disallowedTools", ",".join(DENIED_TOOLS), *budget_flags(request.usd_left)]
        env = {**QUIET_ENV, **dict.fromkeys(MODEL_ENV, request.model_name),
               "CLAUDE_CONFIG_DIR": str(request.home / CONFIG_DIR), "IS_SANDBOX": "1"}
        return AgentLaunch(argv=argv, env=env, files={f"{CONFIG_DIR}/settings.json": json.dumps(SETTINGS, indent=2)})

    def transcript(self, home: Path, output: str) -> str:
        """The session logs Claude Code wrote under its config folder (subagents' included), else its output."""
        logs = sorted((home / CONFIG_DIR / "projects").glob("**/*.jsonl"), key=lambda path: path.stat().st_mtime)
        texts = [session_text(path) for path in logs]
        return "\n".join(text for text in texts if text) or output

    def final_message(self, output: str) -> str | None:
        """The `result` of stream-json's closing `{"type": "result", ...}` line."""
        results = [entry.get("result") for entry in json_lines(output) if entry.get("type") == "result"]
        return next((text for text in reversed(results) if isinstance(text, str) and text.strip()), None)

    def budget_stop(self, output: str) -> str | None:
        """Why the agent stopped itself for budget: its `--max-budget-usd` fired."""
        if BUDGET_STOP not in output.replace(" ", ""):
            return None
        return ("Claude Code stopped at its own --max-budget-usd cap (set to what was left of the item's USD; "
                "it prices calls with its own table, so it can fire before agentsprint's ledger would)")


def session_text(path: Path) -> str:
    """The conversation lines of one session log (user, assistant, system, summary), as JSON lines."""
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") in ("user", "assistant", "system", "summary"):
            kept.append(line)
    return "\n".join(kept)
