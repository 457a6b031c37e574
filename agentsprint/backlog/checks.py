"""Checks across files: duplicate ids, unknown dependencies and dependency cycles."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from agentsprint.backlog import frontmatter
from agentsprint.backlog.errors import Problem
from agentsprint.backlog.frontmatter import FrontMatterError, KeyPath
from agentsprint.backlog.ids import id_sort_key
from agentsprint.domain import Item


class LineFinder:
    """Looks up the line of a key in a file that already parsed (read again only when needed)."""

    def __init__(self, texts: dict[Path, str] | None = None) -> None:
        self._texts = texts or {}
        self._lines: dict[Path, dict[KeyPath, int]] = {}

    def __call__(self, path: Path, key: KeyPath) -> int:
        if path not in self._lines:
            self._lines[path] = self._key_lines(path)
        return frontmatter.line_of(self._lines[path], key)

    def _key_lines(self, path: Path) -> dict[KeyPath, int]:
        try:
            text = self._texts[path] if path in self._texts else path.read_text(encoding="utf-8")
            return frontmatter.key_lines(frontmatter.split(text).front)
        except (OSError, UnicodeDecodeError, FrontMatterError):
            return {}


def cross_check(entries: list[tuple[Path, Item]], line_of: LineFinder | None = None
                ) -> tuple[dict[str, Item], dict[str, Path], list[Problem]]:
    """Items and paths by id (the first file wins a duplicate) and the problems across files."""
    find = line_of or LineFinder()
    items: dict[str, Item] = {}
    paths: dict[str, Path] = {}
    problems: list[Problem] = []
    for path, item in entries:
        if item.id in paths:
            first = paths[item.id]
            problems.append(Problem(first, find(first, ("id",)), f"duplicate id {item.id} (also in {path.name})"))
            problems.append(Problem(path, find(path, ("id",)), f"duplicate id {item.id} (also in {first.name})"))
            continue
        items[item.id], paths[item.id] = item, path
    problems += unknown_dependencies(items, paths, find)
    problems += dependency_cycles(items, paths, find)
    return items, paths, problems


def unknown_dependencies(items: dict[str, Item], paths: dict[str, Path], find: LineFinder) -> list[Problem]:
    """A problem for every depends_on entry naming no item."""
    return [
        Problem(paths[item.id], find(paths[item.id], ("depends_on", index)), f"unknown dependency {dep}")
        for item in items.values()
        for index, dep in enumerate(item.depends_on)
        if dep not in items
    ]


def dependency_cycles(items: dict[str, Item], paths: dict[str, Path], find: LineFinder) -> list[Problem]:
    """One problem per cycle, at the file of its lowest id, naming the whole cycle."""
    problems = []
    for component in _cyclic_components(items):
        start = min(component, key=id_sort_key)
        cycle = _cycle_through(start, component, items)
        entry = items[start].depends_on.index(cycle[1])
        problems.append(Problem(paths[start], find(paths[start], ("depends_on", entry)),
                                f"dependency cycle: {' -> '.join(cycle)}"))
    return problems


def _cyclic_components(items: dict[str, Item]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(items, key=id_sort_key):
        if root in index:
            continue
        work = [(root, iter(_edges(root, items)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    found.append(_pop_component(node, stack, on_stack))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(_edges(child, items))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [c for c in found if len(c) > 1 or next(iter(c)) in items[next(iter(c))].depends_on]


def _edges(node: str, items: dict[str, Item]) -> list[str]:
    return [dep for dep in items[node].depends_on if dep in items]


def _pop_component(node: str, stack: list[str], on_stack: set[str]) -> set[str]:
    component = set()
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.add(member)
        if member == node:
            return component


def _cycle_through(start: str, component: set[str], items: dict[str, Item]) -> list[str]:
    """The shortest dependency path from `start` back to itself inside its component."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for dep in _edges(node, items):
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if dep in component and dep not in came_from:
                came_from[dep] = node
                queue.append(dep)
    return [start, start]
