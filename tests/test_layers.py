"""No import cycle in tocsin: not among its modules, not among its top-level packages.

Type-checking imports count (an upward import under ``TYPE_CHECKING`` is still an
upward dependency). The layers themselves are import-linter's contract in
pyproject.toml (``lint-imports``, run by ./scripts/test); this test guards what a
layers contract cannot see: a cycle between modules of one package, or between
packages that a contract leaves unlisted. Every part of tocsin takes part, the Python
SDK (``tocsin.client``) too: it imports nothing of the server, so it can close no
cycle and needs no exception.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

import grimp
import pytest

Graph = Mapping[str, set[str]]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("tocsin", include_external_packages=False,
                             exclude_type_checking_imports=False)


def strongly_connected(nodes: Iterable[str], edges: Graph) -> list[list[str]]:
    """The cycles' nodes: each strongly connected component of more than one node
    (Tarjan's algorithm, iterative: the module graph is deeper than Python's stack
    would like)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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


def module_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {m: {d for d in graph.find_modules_directly_imported_by(m) if d != m}
            for m in graph.modules}


def top_level(module: str) -> str:
    """``tocsin.store.sql`` → ``tocsin.store``; ``tocsin`` stays itself."""
    return ".".join(module.split(".")[:2])


def describe(cycles: list[list[str]], edges: Graph,
             why: Callable[[str, str], list[str]]) -> str:
    """Every edge inside each cycle, with the imports that make it."""
    lines = []
    for members in cycles:
        inside = set(members)
        lines.append(f"cycle of {len(members)}: {', '.join(members)}")
        for a in members:
            for b in sorted(edges.get(a, set()) & inside):
                lines.append(f"    {a} -> {b}: {'; '.join(why(a, b))}")
    return "\n".join(lines)


def test_strongly_connected_finds_a_cycle_and_only_it() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert strongly_connected("abcde", edges) == [["a", "b", "c"]]


def test_no_cycle_among_modules(graph: grimp.ImportGraph) -> None:
    edges = module_edges(graph)

    def why(a: str, b: str) -> list[str]:
        return [f"line {d['line_number']}: {d['line_contents']}"
                for d in graph.get_import_details(importer=a, imported=b)] or ["import"]

    cycles = strongly_connected(edges, edges)
    assert not cycles, "import cycles among tocsin's modules:\n" + describe(cycles, edges, why)


def test_no_cycle_among_top_level_packages(graph: grimp.ImportGraph) -> None:
    # The root package's __init__ names the public surface lazily (under
    # TYPE_CHECKING): it is above everything, not one of the packages.
    packages: dict[str, set[str]] = defaultdict(set)
    because: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer, imported in module_edges(graph).items():
        for target in imported:
            a, b = top_level(importer), top_level(target)
            if a != b and "tocsin" not in (a, b):
                packages[a].add(b)
                because[a, b].append(f"{importer} -> {target}")
    nodes = {top_level(m) for m in graph.modules} - {"tocsin"}

    def why(a: str, b: str) -> list[str]:
        return sorted(because[a, b])[:3] + (["…"] if len(because[a, b]) > 3 else [])

    cycles = strongly_connected(nodes, packages)
    assert not cycles, ("import cycles among tocsin's top-level packages:\n"
                        + describe(cycles, packages, why))
