"""Import cycles between modules of engine/, gui/ and devtools/: import-linter's layer contracts see
imports between layers only, so two modules of one layer could import each other unnoticed.

python -m tests.import_cycles [package ...]   (from the repository root; default: engine gui devtools;
exit 1 naming each cycle). `python -m tests` runs it.

Every import grimp finds counts: at module level, inside a function (a lazy import still ties the two
modules together) and under TYPE_CHECKING (the types still depend on each other). A package's
__init__ that imports its own submodules is an edge like any other and makes no cycle by itself (grimp
does not count the package Python imports before each of its submodules); it makes one when a
submodule imports a name back from that __init__, which then runs half-initialised.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Mapping, Sequence, Set

import grimp

PACKAGES = ("engine", "gui", "devtools")


def import_graph(packages: Sequence[str] = PACKAGES) -> dict[str, set[str]]:
    """Each module of the packages and the modules of the packages it imports directly."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def knots(imports: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (two modules or more, or one importing itself),
    each sorted, by Tarjan's algorithm without recursion (a long chain of imports must not hit
    Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(imports.get(target, ())))))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1 or module in imports.get(module, ()):
                    found.append(sorted(component))
    return sorted(found)


def shortest_cycle(imports: Mapping[str, Set[str]], knot: Sequence[str]) -> list[str]:
    """A shortest cycle through the knot's first module, staying inside the knot: start, ..., start."""
    start = knot[0]
    inside = set(knot)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(imports.get(module, ())):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target in inside and target not in came_from:
                came_from[target] = module
                queue.append(target)
    raise ValueError(f"{start} is on no cycle inside {sorted(inside)}")


def cycle_lines(imports: Mapping[str, Set[str]]) -> list[str]:
    """One line per knot: a cycle in it, and every module it ties together when that is more."""
    lines = []
    for knot in knots(imports):
        cycle = shortest_cycle(imports, knot)
        line = "import cycle: " + " -> ".join(cycle)
        if len(knot) > len(cycle) - 1:
            line += f" (the knot holds {len(knot)} modules: {', '.join(knot)})"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    packages = tuple(sys.argv[1:] if argv is None else argv) or PACKAGES
    imports = import_graph(packages)
    lines = cycle_lines(imports)
    for line in lines:
        print(line)
    if lines:
        print(
            f"{len(lines)} import cycle(s) in {', '.join(packages)}: move what both sides need into a"
            " module below them, or pass it in as an argument"
        )
        return 1
    print(f"no import cycle among the {len(imports)} modules of {', '.join(packages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
