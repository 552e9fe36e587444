"""The package's module graph: every module imports, and no two modules need each other.

A cycle hidden by an import inside a function still ties the two modules together, so the
graph counts every ``mos_ros`` import wherever it stands.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from conftest import optional_packages

PACKAGE = Path(__file__).resolve().parents[1] / "mos_ros"
#: Generated message code, present only after the ROS 2 build.
GENERATED = ("mos_ros.msg",)

OPTIONAL = optional_packages()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(GENERATED)}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The mos_ros modules ``name`` imports anywhere in its file (``from a import b`` runs
    ``a``, and ``b`` too where it is a module)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets.add(node.module)
            targets.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_two_package_modules_need_each_other():
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(n for n in _modules() if not n.endswith(".__main__")))
def test_every_module_imports(name):
    """Every module but the ``__main__`` ones (importing those runs their tool). Where an
    extra is not installed (a robot with the light install), a module that needs it is
    skipped, naming the package; any other import error fails."""
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in OPTIONAL:
            raise
        pytest.skip(f"{name} needs {error.name}, an optional extra that is not installed")
