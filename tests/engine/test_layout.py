"""The layout of osbs_local (docs/engine.md): no import cycle between its modules, and a generic apiserver layer.

Every import counts, at module level or inside a function (an import moved into a function body to dodge
a cycle is still a cycle); only imports under `if TYPE_CHECKING:` are left out, as they never run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import osbs_local

PACKAGE_DIR = Path(osbs_local.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import and ImportFrom node, except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from package import module` imports the module; `from module import name` the module itself.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "visiting"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "visiting":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_osbs_local_has_no_import_cycle():
    graph = _import_graph()
    assert "osbs_local.apiserver.api" in graph and graph["osbs_local.serve"], "the import graph was not read"
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
    for module in graph:
        importlib.import_module(module)


def test_the_generic_apiserver_layer_imports_nothing_above_it():
    """apiserver/ knows no kind: the kinds, controllers, executor and services build on it, never the reverse."""
    graph = _import_graph()
    generic = {name: targets for name, targets in graph.items() if name.startswith("osbs_local.apiserver")}
    assert generic
    outside = {name: sorted(t for t in targets if not t.startswith("osbs_local.apiserver"))
               for name, targets in generic.items()}
    assert not {name: targets for name, targets in outside.items() if targets}
