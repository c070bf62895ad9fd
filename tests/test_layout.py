"""The package's shape stays as the README's layout section describes it.

Walks every module's imports with `ast` (imports inside functions too, since
those are how a cycle hides) and checks: no import cycle between modules;
the values package imports nothing of the agent; stages never import the
wiring that builds them (runtime, cli, integrator, evaluation, agency); no
two modules share a name; no module grows past the size one reader can hold.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "agent"
MAX_MODULE_LINES = 400

# Stages of the camera pipeline and the delivery side, in data-flow order.
STAGES = ("sources", "motion", "detection", "tracking", "rules", "alerts", "privacy", "delivery")
# What wires stages together or uses them from outside: a stage never imports these.
WIRING = ("runtime", "cli", "integrator", "evaluation", "agency")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imported(node: ast.AST, modules: dict[str, Path]) -> Iterator[str]:
    """Agent modules one import statement names (`from a.b import c` names a.b.c when c is a module)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.split(".")[0] == "agent")
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module.split(".")[0] != "agent":
            return
        for alias in node.names:
            sub = f"{node.module}.{alias.name}"
            yield sub if sub in modules else node.module


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {t for node in ast.walk(tree) for t in _imported(node, modules)}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_values_import_nothing_of_the_agent() -> None:
    graph = import_graph()
    offenders = {m: sorted(t) for m, t in graph.items() if _package(m) == "values" and t}
    assert not offenders, f"agent.values must stay a leaf: {offenders}"


@pytest.mark.parametrize("stage", STAGES)
def test_stages_never_import_the_wiring(stage: str) -> None:
    graph = import_graph()
    climbs = sorted(
        f"{m} -> {t}" for m, targets in graph.items() if _package(m) == stage for t in targets if _package(t) in WIRING
    )
    assert not climbs, f"{stage} climbs into the wiring: {climbs}"


def test_runtime_never_imports_the_command_line() -> None:
    graph = import_graph()
    climbs = sorted(
        f"{m} -> {t}" for m, ts in graph.items() if _package(m) == "runtime" for t in ts if _package(t) == "cli"
    )
    assert not climbs, climbs


def test_no_two_modules_share_a_name() -> None:
    seen: dict[str, list[str]] = {}
    for name in _modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in ("agent", "__main__") and not (PACKAGE_DIR / Path(*name.split(".")[1:])).is_dir():
            seen.setdefault(leaf, []).append(name)
    twice = {leaf: names for leaf, names in seen.items() if len(names) > 1}
    assert not twice, f"module names used twice: {twice}"


def test_no_module_outgrows_one_reader() -> None:
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in _modules().items()}
    too_long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split by responsibility): {too_long}"
