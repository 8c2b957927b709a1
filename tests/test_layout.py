"""The package's shape: no module of pipeline/ imports one that imports it back (imports inside functions
count), and the analysis side reads one list of figures."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pipeline"


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """{module: modules of the package it imports}, from the source (every import statement, at any depth)."""
    mods = {p.stem for p in pkg.glob("*.py")}
    graph = {}
    for path in sorted(pkg.glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from . import x / from .x import y
                    deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
                elif node.level == 0 and node.module and node.module.split(".")[0] == "pipeline":
                    parts = node.module.split(".")
                    deps |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")}
        graph[path.stem] = {d for d in deps if d in mods and d != path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_package_imports_one_that_imports_it_back():
    graph = import_graph()
    assert {"plan", "claims", "degenerate", "reported", "tables", "tableformat", "analysis"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_output_plan_imports_no_analysis_module():
    """Snakemake imports plan.py while planning: only the configuration, nothing heavy."""
    assert import_graph()["plan"] <= {"config"}


def test_one_list_of_figures_for_planning_drawing_and_the_report():
    from pipeline import figures, plan, report

    names = [f.name for f in plan.FIGURES]
    assert len(names) == len(set(names)) and set(figures.DRAW) == set(names)
    items = {i[0] for i in report.PAPER_ITEMS}
    for f in plan.FIGURES:
        for cover in f.covers:
            assert cover.partition("@")[0] in items, (f.name, cover)
    # every figure item of the paper is covered by some figure
    for item, _what, tables, _reason, _scale in report.PAPER_ITEMS:
        if tables is None:
            assert report.item_outputs(item, None), item
