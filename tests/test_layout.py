"""The package's shape: no import cycle, and no Ray or Optuna class patched."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tuner

PACKAGE = Path(tuner.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports at module level, those under `if TYPE_CHECKING:` (and any other `if`
    or `try` at module level) included; imports inside functions are lazy by intent."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If | ast.Try):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of tuner -> the modules of tuner it imports at module level."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _module_level_imports(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base = ".".join([*here, base] if base else here)
                # `from pkg import mod` imports the module pkg.mod; otherwise pkg itself
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_reader_sees_imports_under_type_checking_and_relative_ones():
    graph = import_graph()
    assert "tuner.run._ledger" in graph["tuner.run._callbacks"]
    assert "tuner.run._recorder" in graph["tuner.run._callbacks"]  # under TYPE_CHECKING
    assert "tuner.storage" in graph["tuner.run._ledger"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_of_tuner_imports_one_that_imports_it_back():
    assert _cycle(import_graph()) is None


def test_no_ray_or_optuna_class_is_patched():
    """Retries go through Ray's FailureConfig and the trial's own process, not by
    replacing Trial.handle_error or reaching into a trial's actor."""
    patched = re.compile(r"handle_error|temporary_state|\b(Trial|Searcher|TrialScheduler)\.\w+ = ")
    hits = [
        f"{path}:{i}"
        for path in PACKAGE.rglob("*.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if patched.search(line)
    ]
    assert hits == []
