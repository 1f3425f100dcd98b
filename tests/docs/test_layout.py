"""The package layout has no import cycles and keeps its layers (docs/architecture.md, "Layers").

The graph is built from the AST of every module of taskgate/: a unit is a subpackage (`api`,
`catalogue`, ...) or a top-level module (`settings`, `services`, ...). Every import counts — at module
level, under `if TYPE_CHECKING:` and inside functions (a late import hides a dependency from the
interpreter, not from the design)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "taskgate"

# Lowest first. A unit may import units of its own layer or below, never above; within a layer the
# cycle check keeps the direction one way. Keep docs/architecture.md's "Layers" list in step.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"taskgate", "errors", "models", "logging", "settings", "web", "process"}),
    ("data", {"catalogue", "providers"}),
    ("store", {"store"}),
    ("domain", {"billing", "users", "tasks", "metrics", "pool", "webhooks", "scheduler"}),
    ("composition", {"services"}),
    ("roles", {"admin", "api", "worker", "sim"}),
    ("entry points", {"dev", "bench", "cli", "__main__", "client"}),
]

# Upward imports that are allowed, each for a stated reason (they are left out of the cycle check too).
ALLOWED_UP: dict[tuple[str, str], str] = {
    ("settings", "store"): "settings validates Redis URLs with the store's parsers, imported late",
}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "taskgate"


def is_module(name: str) -> bool:
    return (PKG / f"{name}.py").is_file() or (PKG / name / "__init__.py").is_file()


def imported_modules(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "taskgate"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "taskgate":  # from taskgate import x: a module, or a name of the package
                out |= {f"taskgate.{a.name}" if is_module(a.name) else "taskgate" for a in node.names}
            elif node.module.split(".")[0] == "taskgate":
                out.add(node.module)
    return out


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> imported unit -> the importing modules (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PKG.rglob("*.py"):
        module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        source = unit_of(module)
        graph[source]  # every unit is a node, even one importing nothing
        for target in map(unit_of, imported_modules(ast.parse(path.read_text()))):
            if target != source:
                graph[source][target].add(module)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of() -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def test_the_graph_sees_the_imports_it_should():
    graph = unit_graph()
    assert "taskgate.billing.wallets" in graph["billing"]["catalogue"]  # module level
    assert "taskgate.tasks.service" in graph["tasks"]["users"]
    assert "taskgate.settings" in graph["settings"]["store"]  # a late import
    assert graph["metrics"]["taskgate"] == {"taskgate.metrics.process"}  # from taskgate import __version__
    assert {"api", "catalogue", "dev", "users", "admin"} <= set(graph)


def test_no_import_cycle_between_packages():
    graph = unit_graph()
    for a, b in ALLOWED_UP:  # the listed exceptions, and only those
        graph[a].pop(b, None)
    found = cycles(graph)
    detail = [
        f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})" for c in found for a in c for b in c if b in graph[a]
    ]
    assert not found, f"import cycles between packages: {found}\n" + "\n".join(detail)


def test_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}, "d": {"a": set()}}) == [
        ["a", "b", "c"]
    ]


def test_every_package_and_top_level_module_has_a_layer():
    missing = set(unit_graph()) - set(layer_of())
    assert not missing, f"add these to LAYERS (and to docs/architecture.md's layers): {sorted(missing)}"
    gone = set(layer_of()) - set(unit_graph())
    assert not gone, f"LAYERS names units that no longer exist: {sorted(gone)}"


def test_imports_point_down_the_layers():
    layer = layer_of()
    upward = [
        f"{a} ({LAYERS[layer[a]][0]}) imports {b} ({LAYERS[layer[b]][0]}): {', '.join(sorted(mods))}"
        for a, targets in unit_graph().items()
        for b, mods in targets.items()
        if a in layer and b in layer and layer[b] > layer[a] and (a, b) not in ALLOWED_UP
    ]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_architecture_md_lists_the_layers():
    text = (PKG.parent / "docs" / "architecture.md").read_text()
    section = text[text.index("## Layers") : text.index("## Module map")]
    for name, units in LAYERS:
        line = next((row for row in section.splitlines() if re.match(rf"\d+\. {name}:", row)), None)
        assert line is not None, f"docs/architecture.md's layers miss {name!r}"
        for unit in units:
            assert f"`{unit}`" in line, f"docs/architecture.md: {unit} is not in the {name} layer"
