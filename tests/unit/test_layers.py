"""Layers point one way and no module imports itself round a cycle (issue 18).

The layers, bottom to top (the README's "Where things live" draws them):

0. ground: ``streams`` records, settings, topics, metrics, errors, text, logs, the broker,
   Kafka client helpers and process helpers;
1. stage cores: ``agents`` (pure, typed; no Faust app);
2. Faust: ``streams.app`` and the modules that hook into it, and each stage's agent;
3. top: the CLI, the demo and what they print; and ``board`` (the desk's page, issue 21).

A module may import its own layer or lower ones. Every import counts, those inside functions
too: a lazy import still ties the two modules together. ``board`` sits above ``streams`` and
``agents``: it may import their ground and stage cores but not the Faust layer (the board is
its own process with no Faust app), and nothing imports it except the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("streams", "agents", "board")
TOP = {"streams.cli", "streams.demo", "streams.console"}
FAUST = {"streams.app", "streams.stage", "streams.web", "streams.lag", "streams.producer",
         "streams.offsets"}
FAUST_SUFFIXES = (".agent", ".feed", ".api")
BOARD = "board"
#: The only modules outside ``board`` that may import it.
BOARD_USERS = {"streams.cli"}
LAYER_NAMES = ("ground", "stage cores", "Faust", "top")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _in_board(module: str) -> bool:
    return module == BOARD or module.startswith(BOARD + ".")


def layer(module: str) -> int:
    if module in TOP or _in_board(module):
        return 3
    if module in FAUST or (module.startswith("agents.") and module.endswith(FAUST_SUFFIXES)):
        return 2
    if module.startswith("agents"):
        return 1
    return 0


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known and name != module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_layers_point_one_way() -> None:
    upward = sorted(
        f"{module} ({LAYER_NAMES[layer(module)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
        for module, targets in _graph().items() for target in targets
        if layer(target) > layer(module))
    assert not upward, "\n".join(upward)


def test_board_stands_apart() -> None:
    """The board imports no Faust-layer module, and only the CLI imports the board."""
    graph = _graph()
    assert any(_in_board(m) for m in graph), "board/ not found"
    faust = sorted(f"{module} imports {target}" for module, targets in graph.items()
                   if _in_board(module) for target in targets
                   if not _in_board(target) and layer(target) == 2)
    assert not faust, "\n".join(faust)
    users = sorted(f"{module} imports {target}" for module, targets in graph.items()
                   if not _in_board(module) and module not in BOARD_USERS
                   for target in targets if _in_board(target))
    assert not users, "\n".join(users)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _is_package_of(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_no_import_cycles() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle a reader trips on.
    pruned = {module: {t for t in targets if not _is_package_of(t, module)}
              for module, targets in graph.items()}
    assert not _cycles(pruned), _cycles(pruned)


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer("streams.records") < layer("agents.clean.core") < layer("agents.clean.agent")
    assert layer("agents.clean.agent") < layer("streams.cli")
    assert layer("agents.clean.agent") < layer("board.server")
