"""The structure the code's own imports draw: modules, floors, circles, imports running back up.

    python scripts/import_graph.py            # the report (kdkge/, hydra_plugins/, train.py, eval.py)
    python scripts/import_graph.py --json     # the same as JSON

Every ``import`` and ``from ... import`` statement of the repository's own modules counts, at the
top of a module or inside a function (a lazy import is still a dependency).  Definitions:

* **circle**: modules that reach each other through imports (lazy ones included): a strongly
  connected component of more than one module;
* **floor**: a module importing none of ours is on floor 0, any other one floor above the highest
  module it imports; a lazy import (inside a function) that closes a circle is left out here, so it
  is the one that runs back up, and modules in a circle of module-level imports share one floor;
* **import running back up**: an import of a module on the same or a higher floor than the
  importer's: what makes a layered picture a lie.

:func:`graph` is what ``tests/test_import_graph.py`` checks.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kdkge", "hydra_plugins")
SCRIPTS = ("train.py", "eval.py")


@dataclass
class Graph:
    modules: list[str]
    edges: dict[str, set[str]]  # every import (module level and lazy)
    top_edges: dict[str, set[str]]  # module-level imports only
    floors: dict[str, int] = field(default_factory=dict)
    circles: list[list[str]] = field(default_factory=list)
    back_up: list[tuple[str, str]] = field(default_factory=list)


def _module_files(root: Path) -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    for script in SCRIPTS:
        if (root / script).is_file():
            files[script.removesuffix(".py")] = root / script
    return files


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of the dotted ``name`` that is one of ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(all imported modules of ours, those imported at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    top: set[str] = set()
    lazy_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1] if node.level > 1 else here
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved and resolved != module:
                found.add(resolved)
                if id(node) not in lazy_nodes:
                    top.add(resolved)
    return found, top


def _components(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            out.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def _floors(nodes: list[str], edges: dict[str, set[str]]) -> dict[str, int]:
    components = _components(nodes, edges)
    of = {m: i for i, c in enumerate(components) for m in c}
    floor_of: dict[int, int] = {}
    for i, component in enumerate(components):  # Tarjan yields a component after those it imports
        below = [floor_of[of[w]] for m in component for w in edges.get(m, ()) if of[w] != i]
        floor_of[i] = 1 + max(below) if below else 0
    return {m: floor_of[of[m]] for m in nodes}


def graph(root: Path = ROOT) -> Graph:
    files = _module_files(root)
    names = set(files)
    edges, top_edges = {}, {}
    for module, path in files.items():
        edges[module], top_edges[module] = _imports(module, path, names)
    modules = sorted(files)
    g = Graph(modules, edges, top_edges)
    components = _components(modules, edges)
    g.circles = [c for c in components if len(c) > 1]
    of = {m: i for i, c in enumerate(components) for m in c}
    layered = {a: {b for b in edges[a] if b in top_edges[a] or of[a] != of[b]} for a in modules}
    g.floors = _floors(modules, layered)
    g.back_up = sorted((a, b) for a in modules for b in edges[a] if g.floors[b] >= g.floors[a])
    return g


def report(g: Graph) -> str:
    lines = [f"{len(g.modules)} modules on {max(g.floors.values(), default=-1) + 1} floors, "
             f"{len(g.circles)} circle{'' if len(g.circles) == 1 else 's'}, "
             f"{len(g.back_up)} import{'' if len(g.back_up) == 1 else 's'} running back up", ""]
    for floor in sorted(set(g.floors.values()), reverse=True):
        members = [m for m in g.modules if g.floors[m] == floor]
        lines.append(f"floor {floor}: {', '.join(members)}")
    lines.append("")
    for circle in g.circles:
        lines.append("circle: " + " ↔ ".join(circle))
    for a, b in g.back_up:
        lines.append(f"back up: {a} (floor {g.floors[a]}) imports {b} (floor {g.floors[b]})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    g = graph()
    if "--json" in argv:
        print(json.dumps({"modules": g.modules, "floors": g.floors, "circles": g.circles,
                          "back_up": g.back_up, "imports": {m: sorted(v) for m, v in g.edges.items()}}, indent=1))
    else:
        print(report(g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
