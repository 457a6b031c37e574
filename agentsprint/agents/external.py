"""External coding agents as the coder: a command line run headless in the worktree, metered by the proxy.

`ExternalCoder` renders the prompt file and hands the run to a launcher (the runner's durable step);
`run_external` is that run: a token from the metering proxy, the command in the sandbox with the
proxy's URLs and the token in its environment, killed (whole process group) at the item's time limit
or when the proxy stops the agent. What the agent changed is committed by the runner's round check,
then the same gates, QA and review follow as for the built-in coder.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from agentsprint import policy
from agentsprint.agents import prompts
from agentsprint.agents.backends import AgentBackend, LaunchRequest, registry
from agentsprint.agents.coder import CoderOutcome
from agentsprint.agents.errors import Escalate
from agentsprint.domain import EscalationReason, Item
from agentsprint.process import run_process
from agentsprint.redaction import redact, scrubbed_env
from agentsprint.sandbox import Sandbox, command_dirs, wrap
from agentsprint.store.ledger import budgets, model_calls

if TYPE_CHECKING:
    from agentsprint.agents.io import AgentIO
    from agentsprint.agents.supervisor import Plan
    from agentsprint.config import ModelSettings
    from agentsprint.llm.context import CallContext
    from agentsprint.llm.proxy import Grant, MeteringProxy

SETTLE_WAIT_S = 10.0
"""After the agent exits: how long its calls still in flight (a stream's last lines) may take to settle
before the round's spend is read."""
SUMMARY_CHARS = 500
"""Characters of the agent's last answer (else of its output's tail) in the round's coder summary."""
OUTPUT_CAP = 20_000
"""Characters of the agent's own output kept (head and tail) for the round and the escalation package."""


class ExternalOutcome(BaseModel):
    """What one run of an external agent did (serializable: a durable step's output)."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    output: str
    timed_out: bool = False
    stopped: str | None = None
    """Why the proxy stopped the agent (it kept calling after its budget refusals)."""
    seconds: float = 0.0
    calls: int = 0
    tokens: int = 0
    usd: float = 0.0
    transcript: str = ""
    final_message: str | None = None
    """The agent's last answer, read from its output by its backend (None: not found)."""
    """The agent's own record of the round (its session log, else its output), redacted and capped."""


class ExternalAgentFailed(Exception):
    """The agent could not run or failed (missing executable, non-zero exit): the item is dead-lettered."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExternalAgentFailed, (self.detail,))


Launch = Callable[["CallContext", str, str], ExternalOutcome]
"""Runs the agent: (ctx, prompt text, worktree) -> outcome."""


class ExternalCoder:
    """The coder as an external agent (`[models.coder] backend = "claude-code"`, "codex", ..., "command")."""

    def __init__(self, launch: Launch, protected_paths: list[str]) -> None:
        self.launch = launch
        self.protected_paths = protected_paths

    def prompt(self, ctx: CallContext, item: Item, plan: Plan, findings: list[str]) -> str:
        """The prompt file's text: the item, the plan and the findings."""
        return prompts.render("external_coder.j2", item=item, plan=plan, findings=findings, round=ctx.round,
                              protected_paths=self.protected_paths)

    def work(self, io: AgentIO, ctx: CallContext, item: Item, plan: Plan, findings: list[str],
             worktree: str) -> CoderOutcome:
        """Run the agent once; escalate (time, budget) or fail (it did not run) as its outcome says."""
        outcome = self.launch(ctx, self.prompt(ctx, item, plan, findings), worktree)
        judge(outcome)
        tail = (outcome.final_message or outcome.output.strip())[-SUMMARY_CHARS:] or "(no output)"
        return CoderOutcome(summary=f"external agent exited 0 after {outcome.calls} model calls: {tail}",
                            finished=True, steps=outcome.calls, tokens=outcome.tokens, usd=outcome.usd,
                            transcript=outcome.transcript)


def judge(outcome: ExternalOutcome) -> None:
    """Escalate or fail the item when the run did not end cleanly."""
    log = f"\n--- agent output ---\n{outcome.output.strip()[-2000:]}"
    if outcome.stopped:
        raise Escalate(EscalationReason.BUDGET, outcome.stopped + log)
    if outcome.timed_out:
        raise Escalate(EscalationReason.TIME, f"the external agent ran out of the item's time ({outcome.seconds:g}s): "
                                              f"its process group was killed{log}")
    if outcome.exit_code == 127:
        raise ExternalAgentFailed(f"the coder command was not found: {outcome.output.strip()}")
    if outcome.exit_code != 0:
        raise ExternalAgentFailed(f"the external agent exited with status {outcome.exit_code}{log}")


def agent_environment(proxy: MeteringProxy, token: str, home: Path | None = None) -> dict[str, str]:
    """A scrubbed environment pointing both SDK families at the proxy, the token as their key, and (with
    `home`) the agent's private home as $HOME and its XDG folders."""
    root = proxy.base_url.removesuffix("/v1")
    env = {**scrubbed_env(), "OPENAI_BASE_URL": proxy.base_url, "OPENAI_API_BASE": proxy.base_url,
           "OPENAI_API_KEY": token, "ANTHROPIC_BASE_URL": root, "ANTHROPIC_API_KEY": token,
           "ANTHROPIC_AUTH_TOKEN": token, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    if home is not None:
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
                   XDG_STATE_HOME=str(home / ".local/state"), XDG_CACHE_HOME=str(home / ".cache"))
    return env


def usd_left(proxy: MeteringProxy, ctx: CallContext) -> float | None:
    """The least USD left on the call's scopes (None: none has a USD cap)."""
    left = [state.left_usd for state in budgets(proxy.gateway.store, ctx.scopes).values()
            if state.left_usd is not None]
    return max(0.0, min(left)) if left else None


def run_external(proxy: MeteringProxy, ctx: CallContext, role: ModelSettings, prompt: str, worktree: str,
                 timeout_s: float, sandbox: Sandbox) -> ExternalOutcome:
    """Run the role's agent headless in `worktree` to its end, the time limit or a stop by the proxy."""
    backend = registry.get(role.backend)
    stop = threading.Event()
    grant = proxy.grant(ctx, imputed=role.subscription, on_stop=lambda _why: stop.set())
    folder = Path(tempfile.mkdtemp(prefix="agentsprint-agent-"))
    try:
        prompt_file, home = folder / "prompt.md", folder / "home"
        prompt_file.write_text(prompt, encoding="utf-8")
        home.mkdir()
        request = LaunchRequest(executable=role.command or backend.executable, prompt_file=prompt_file,
                                prompt=prompt, home=home, proxy_root=proxy.base_url.removesuffix("/v1"),
                                token=grant.token, model=role.model, usd_left=usd_left(proxy, ctx))
        launch = backend.launch(request)
        for relative, text in launch.files.items():
            target = home / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        env = {**agent_environment(proxy, grant.token, home), **launch.env}
        result = _run(launch.argv, Path(worktree), timeout_s, env, _sandbox_for(sandbox, folder, home), stop)
        transcript = redact(policy.cap_text(backend.transcript(home, result.output), OUTPUT_CAP))
    finally:
        proxy.revoke(grant.token, settle_seconds=SETTLE_WAIT_S)
        shutil.rmtree(folder, ignore_errors=True)
    calls = [c for c in model_calls(proxy.gateway.store, ctx.item_id)
             if (c.run_id, c.round, c.role) == (ctx.run_id, ctx.round, ctx.role)]
    return ExternalOutcome(exit_code=result.exit_code, output=result.output,
                           timed_out=result.timed_out and grant.stopped is None,
                           stopped=grant.stopped or _budget_stop(backend, grant, result),
                           seconds=result.seconds, calls=len(calls),
                           tokens=sum(c.input_tokens + c.output_tokens for c in calls),
                           usd=sum(c.usd for c in calls), transcript=transcript,
                           final_message=backend.final_message(result.output))


def _budget_stop(backend: AgentBackend, grant: Grant, result: Any) -> str | None:
    """Why a run that exited non-zero ended for budget, not by failing: the agent gave up after the proxy
    refused its call for budget (Claude Code exits 1 then), or its own native cap fired."""
    if result.exit_code == 0 or result.timed_out:
        return None
    if grant.refusals:
        return (f"the external agent exited with status {result.exit_code} after the metering proxy refused "
                f"{grant.refusals} of its calls for budget: {grant.refused}")
    return backend.budget_stop(result.output)


def _sandbox_for(sandbox: Sandbox, prompt_folder: Path, home: Path) -> Sandbox:
    """The item's sandbox with the prompt readable, the agent's home writable and the network shared
    (the proxy is on loopback)."""
    return sandbox.model_copy(update={"network": True, "readable": [*sandbox.readable, str(prompt_folder)],
                                      "writable": [*sandbox.writable, str(home)]})


def _run(argv: list[str], cwd: Path, timeout_s: float, env: dict[str, str], sandbox: Sandbox,
         stop: threading.Event) -> Any:
    from agentsprint.process import CommandResult

    if not argv:
        return CommandResult(exit_code=127, output="empty command")
    program = argv[0]
    found = shutil.which(program, path=env.get("PATH")) if "/" not in program else str(cwd / program)
    if not found or not Path(found).exists():
        return CommandResult(exit_code=127, output=f"{program}: not found on PATH")
    named = sandbox.model_copy(update={"readable": [*sandbox.readable, *named_file_dirs(argv[1:], cwd)]})
    return run_process(wrap(argv, cwd, named, env.get("PATH", "")), cwd, max(timeout_s, 0.1), OUTPUT_CAP, env,
                       stop)


def named_file_dirs(args: list[str], cwd: Path) -> list[str]:
    """Folders of files the command line names by absolute path (`python /tmp/x/agent.py`) that the
    sandbox's private /tmp would hide: the user's own command stays runnable wherever its files are."""
    return [folder for arg in args if arg.startswith("/") and Path(arg).is_file() for folder in command_dirs(arg, cwd)]
