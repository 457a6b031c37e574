"""The public agent tool contract: argument models and their OpenAI function-tool schemas.

Tool names and argument names are a public interface (DESIGN "Agent tool contract"); the
descriptions may change. Every model forbids unknown arguments, so they are schema failures.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentsprint.text import shorten


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmitPlan(ToolArgs):
    """Submit the plan for this round (or escalate to a human instead)."""

    steps: list[str] = Field(description="Ordered, concrete steps for the coder.")
    acceptance: list[str] = Field(description="Checks that tell QA the item is done.")
    escalate: str | None = Field(
        default=None, description="Why a human must take over instead of another round; null to go on."
    )

    @model_validator(mode="after")
    def _steps_unless_escalating(self) -> SubmitPlan:
        if self.escalate is None and not self.steps:
            raise ValueError("steps must not be empty unless escalate is set")
        return self


class ListFiles(ToolArgs):
    """List the files under a folder of the worktree (recursively, sorted)."""

    path: str = Field(default=".", description="Folder relative to the worktree root.")


class ReadFile(ToolArgs):
    """Read a text file of the worktree, optionally only lines start..end (1-based, inclusive)."""

    path: str = Field(description="File path relative to the worktree root.")
    start: int | None = Field(default=None, ge=1, description="First line to read (1-based); null = 1.")
    end: int | None = Field(default=None, ge=1, description="Last line to read (inclusive); null = last.")


class Search(ToolArgs):
    """Search files for a regular expression; results are `path:line: text`, capped."""

    pattern: str = Field(description="Regular expression in RE2 syntax (like Python's, without lookarounds or "
                         "backreferences), matched against each line.")
    path: str = Field(default=".", description="File or folder relative to the worktree root.")


class WriteFile(ToolArgs):
    """Create or overwrite a file with the given content."""

    path: str = Field(description="File path relative to the worktree root.")
    content: str = Field(description="The whole new content of the file.")


class EditFile(ToolArgs):
    """Replace the one occurrence of `old` in a file by `new` (`old` must occur exactly once)."""

    path: str = Field(description="File path relative to the worktree root.")
    old: str = Field(min_length=1, description="Exact text to replace; include enough context to be unique.")
    new: str = Field(description="Replacement text.")


class Run(ToolArgs):
    """Run an allowed command in the worktree (no shell; timeout; output capped)."""

    command: str = Field(min_length=1, description="Command line, e.g. `pytest -q tests/test_x.py`.")


class Finish(ToolArgs):
    """Declare the work of this round finished; deterministic gates and QA judge it next."""

    summary: str = Field(description="What was changed and why, for QA and the human reviewer.")


class SubmitVerdict(ToolArgs):
    """Approve the change or reject it with reasons the next round can act on."""

    verdict: Literal["approve", "reject"]
    reasons: list[str] = Field(description="Why; for a reject, each reason names a concrete problem.")

    @model_validator(mode="after")
    def _reasons_for_reject(self) -> SubmitVerdict:
        if self.verdict == "reject" and not self.reasons:
            raise ValueError("a reject needs at least one reason")
        return self


Offered = dict[str, type[ToolArgs]]

READ_ONLY_TOOLS: Offered = {"list_files": ListFiles, "read_file": ReadFile, "search": Search}
SUPERVISOR_TOOLS: Offered = {"submit_plan": SubmitPlan}
CODER_TOOLS: Offered = {
    **READ_ONLY_TOOLS,
    "write_file": WriteFile,
    "edit_file": EditFile,
    "run": Run,
    "finish": Finish,
}
REVIEW_TOOLS: Offered = {**READ_ONLY_TOOLS, "submit_verdict": SubmitVerdict}
ALL_TOOLS: Offered = {**SUPERVISOR_TOOLS, **CODER_TOOLS, **REVIEW_TOOLS}


def _strip_titles(node: Any) -> Any:
    """The schema without pydantic's "title" keys (noise in a prompt); property names are kept."""
    if isinstance(node, dict):
        return {
            key: (
                {name: _strip_titles(sub) for name, sub in value.items()}
                if key == "properties"
                else _strip_titles(value)
            )
            for key, value in node.items()
            if key != "title"
        }
    if isinstance(node, list):
        return [_strip_titles(value) for value in node]
    return node


def parameters_schema(model: type[ToolArgs]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, as sent to the model (the description goes on the tool)."""
    schema: dict[str, Any] = _strip_titles(model.model_json_schema())
    schema.pop("description", None)
    return schema


def tool_schema(name: str, model: type[ToolArgs]) -> dict[str, Any]:
    """One OpenAI function-tool definition."""
    description = (model.__doc__ or name).strip()
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters_schema(model)},
    }


def tool_schemas(offered: Offered) -> list[dict[str, Any]]:
    """The function-tool definitions of the offered tools, in a stable order."""
    return [tool_schema(name, model) for name, model in offered.items()]


def describe_errors(exc: ValidationError, limit: int = 200) -> str:
    """Pydantic's validation errors as short lines: `- location: message (got value)`."""
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(arguments)"
        got = repr(err.get("input"))
        lines.append(f"- {where}: {err['msg']} (got {shorten(got, limit)})")
    return "\n".join(lines)
