"""The code's shape: import cycles, upward imports, function and module sizes.

    python benchmarks/code_shape.py            # prints the figures, writes results/code_shape.json
    python benchmarks/code_shape.py --small    # the same (it takes about a second), for CI

Imports are every `import` in the package as grimp sees them (lazy imports inside functions and
`TYPE_CHECKING` imports included, as the import-linter contracts see them). A cycle is a strongly
connected group of modules. An upward import goes from a layer of the `.importlinter` layers contract
to a higher one. The exit code is 1 when a module cycle lies outside `KNOWN_CYCLES` or an import
goes upward.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import json
import statistics
import sys
import time
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agentsprint"
RESULTS = Path(__file__).resolve().parent / "results" / "code_shape.json"
# Cycles allowed for now, by a module of the cycle; the contract that forbids them is written but off.
KNOWN_CYCLES = {"agentsprint.runner.flow"}


def import_graph() -> grimp.ImportGraph:
    """Every import between agentsprint's own modules."""
    return grimp.build_graph("agentsprint", exclude_type_checking_imports=False)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.find_modules_directly_imported_by(node):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = [stack.pop()]
            while group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def layer_ranks() -> dict[str, int]:
    """Module or package -> its rank in the layers contract (0 = top)."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    section = next(s for s in config.sections() if config[s].get("type") == "layers")
    rows = [line.strip() for line in config[section]["layers"].splitlines() if line.strip()]
    return {name.strip().strip("()"): rank for rank, row in enumerate(rows)
            for name in row.replace(":", "|").split("|")}


def rank_of(module: str, ranks: dict[str, int]) -> int | None:
    """The rank of the layer `module` belongs to (None: in no layer)."""
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        if ".".join(parts[:size]) in ranks:
            return ranks[".".join(parts[:size])]
    return None


def upward_imports(graph: grimp.ImportGraph) -> list[str]:
    """Imports from a lower layer to a higher one, as `importer -> imported`."""
    ranks = layer_ranks()
    wrong = []
    for importer in sorted(graph.modules):
        low = rank_of(importer, ranks)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            high = rank_of(imported, ranks)
            if low is not None and high is not None and high < low:
                wrong.append(f"{importer} -> {imported}")
    return wrong


def function_lengths() -> list[tuple[int, str]]:
    """(lines, where) of every function and method in the package, nested ones included."""
    lengths = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                where = f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name}"
                lengths.append((node.end_lineno - node.lineno + 1, where))
    return lengths


def module_sizes() -> list[int]:
    """Lines of every module of the package."""
    return [len(path.read_text(encoding="utf-8").splitlines()) for path in sorted(PACKAGE.rglob("*.py"))]


def sizes() -> dict[str, object]:
    """Function and module sizes, as JSON-ready values."""
    functions = function_lengths()
    lines = [n for n, _ in functions]
    modules = module_sizes()
    longest = max(functions)
    return {"functions": len(functions), "median_function_lines": statistics.median(lines),
            "p90_function_lines": statistics.quantiles(lines, n=10)[-1],
            "longest_function": {"lines": longest[0], "where": longest[1]},
            "modules": len(modules), "median_module_lines": statistics.median(modules),
            "largest_module_lines": max(modules)}


def problems(groups: list[list[str]], upward: list[str]) -> list[str]:
    """Bounds not met, in words."""
    found = [f"import cycle: {' <-> '.join(group)}" for group in groups if not KNOWN_CYCLES & set(group)]
    return found + [f"upward import: {edge}" for edge in upward]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the same measurement (it is fast), for CI")
    parser.parse_args()
    graph = import_graph()
    groups, upward = cycles(graph), upward_imports(graph)
    report = {"cycles": groups, "upward_imports": upward, **sizes(), "problems": problems(groups, upward),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: value for key, value in report.items() if key != "measured_at"}, indent=2))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
