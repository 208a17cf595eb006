"""The import graph of ``app`` has no circle: no module imports itself through others.

grimp (import-linter's engine) counts every import, those inside functions too, since a lazy
import only hides a circle. The layering contracts are in ``.importlinter`` (``lint-imports``).
"""

from __future__ import annotations

import grimp


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            step = next(imported, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.find_modules_directly_imported_by(step)))))
                elif step in on_stack:
                    low[module] = min(low[module], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_app_imports_itself_through_others():
    # Given the graph of every import among app's modules, lazy ones included
    graph = grimp.build_graph("app")
    # When its circles are looked for, Then there are none
    assert circles(graph) == []


def test_a_circle_is_found_however_it_is_hidden():
    # Given a graph where a imports b, b imports c lazily and c imports a
    graph = grimp.ImportGraph()
    for importer, imported in (("app.a", "app.b"), ("app.b", "app.c"), ("app.c", "app.a"), ("app.c", "app.d")):
        graph.add_import(importer=importer, imported=imported)
    # When its circles are looked for, Then the three are one circle, and d is in none
    assert circles(graph) == [["app.a", "app.b", "app.c"]]
