#!/usr/bin/env python3
"""Check the package layering of ``src/herewith`` (docs/architecture.md, "Layers").

Reads every module's imports (``ast``, nothing is imported or run) and fails when

- a package imports a package of a higher layer (imports run one way: web/app/cli -> jobs -> media ->
  signaling -> sessions/insights -> theming/metered -> rooms -> meetings -> webhooks/ratelimit/auth -> db/kit);
- two packages import each other, directly or through others (a cycle), even within one layer;
- a module other than ``app.py`` touches ``app.state`` (the wiring is the only place that may).

Usage::

    python scripts/check_layers.py          # prints the package graph; exit status 1 on a violation
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "herewith"

#: Layer of each top-level package or module of ``herewith``: a higher layer may import a lower or equal
#: one (equal only without a cycle), never a higher one.
LAYERS: dict[str, int] = {
    "__main__": 10, "app": 10, "cli": 10, "web": 10,
    "jobs": 9,
    "media": 8, "captions": 8,
    "signaling": 7,
    "sessions": 6, "insights": 6, "recordings": 6, "transcriptions": 6, "summaries": 6,
    "theming": 5, "metered": 5,
    "rooms": 4,
    "meetings": 3,
    "webhooks": 2, "ratelimit": 2, "auth": 2, "speech": 2,
    "db": 1, "kit": 1, "deps": 1, "config": 1, "errors": 1, "__init__": 1,
}


def package_of(path: Path, root: Path = ROOT) -> str:
    """``src/herewith/rooms/service.py`` -> ``rooms``; ``src/herewith/app.py`` -> ``app``."""
    parts = path.relative_to(root).with_suffix("").parts
    return parts[0]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["herewith", *parts])


def imported_packages(path: Path, root: Path = ROOT) -> set[str]:
    """The ``herewith`` top-level packages a module imports (absolute and relative imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a relative import starts from
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                names = [".".join([*base, node.module] if node.module else base)]
                if not node.module:
                    names = [".".join([*base, alias.name]) for alias in node.names]
            elif node.module:
                names = [node.module]
                if node.module == "herewith":  # ``from herewith import x``: a module, or a name of __init__
                    names = [f"herewith.{alias.name}" if (root / alias.name).exists()
                             or (root / f"{alias.name}.py").exists() else "herewith.__init__"
                             for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "herewith" and len(parts) > 1:
                found.add(parts[1])
    return found


def app_state_users(path: Path) -> list[int]:
    """Line numbers where a module reads or writes ``<something>.app.state`` / ``app.state``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "state":
            value = node.value
            if (isinstance(value, ast.Name) and value.id == "app") or (
                    isinstance(value, ast.Attribute) and value.attr == "app"):
                lines.append(node.lineno)
    return lines


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path = ROOT) -> list[str]:
    """Every violation, as one line each (empty: the layering holds)."""
    problems: list[str] = []
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        package = package_of(path, root)
        if package not in LAYERS:
            problems.append(f"{path.relative_to(root.parent.parent)}: package {package!r} has no layer in LAYERS")
            continue
        for target in imported_packages(path, root):
            if target == package:
                continue
            graph[package].add(target)
            if target not in LAYERS:
                problems.append(f"{path.relative_to(root.parent.parent)}: imports unknown package {target!r}")
            elif LAYERS[target] > LAYERS[package]:
                problems.append(f"{path.relative_to(root.parent.parent)}: {package} (layer {LAYERS[package]}) "
                                f"imports {target} (layer {LAYERS[target]}), a higher layer")
        if path.name != "app.py" or path.parent != root:
            for line in app_state_users(path):
                problems.append(f"{path.relative_to(root.parent.parent)}:{line}: app.state outside app.py")
    for component in cycles(graph):
        problems.append("import cycle between packages: " + " <-> ".join(component))
    return problems


def main() -> int:
    problems = check()
    for line in problems:
        print(line)
    if not problems:
        print("layers ok: no upward import, no cycle between packages, app.state only in app.py")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
