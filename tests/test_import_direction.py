"""The layers of docs/architecture.md, made testable: imports only go down, and no module is part
of an import cycle, however the import is hidden (inside a function, under ``TYPE_CHECKING``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.imports import ROOT, modules_after_import

#: Layer of each part, by module-name prefix (the longest prefix wins). A module may import from
#: its own part or from a lower layer only (1.5: a helper the stores share, above the store contract).
LAYERS = {
    "rotator": 0, "rotator.core": 0,
    "rotator.jfrog": 1, "backends": 1, "backends.base": 1,
    "backends.inline_metadata": 1.5, "backends.file": 2, "backends.vault": 2, "backends.aws_secretsmanager": 2,
    "rotator.emulator": 2,
    "rotator.engine": 3,
    "rotator.config": 4,
    "rotator.ops": 5,
    "rotator.triggers": 6,
    "rotator.daemon": 7, "rotator.aws_lambda": 7,
    "rotator.cli": 8, "rotator.__main__": 9,
}


def part_of(module: str) -> str:
    candidates = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return max(candidates, key=len)


def project_modules() -> dict[str, Path]:
    found = {}
    for top in ("rotator", "backends"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """Every project module ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {m: imports_of(p, m, known) for m, p in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, imported in graph.items():
        mine = part_of(module)
        for other in imported:
            theirs = part_of(other)
            if theirs == mine or other == "rotator":
                continue
            if LAYERS[theirs] >= LAYERS[mine]:
                bad.append(f"{module} (layer {LAYERS[mine]}) imports {other} (layer {LAYERS[theirs]})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
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


def test_every_module_belongs_to_a_layer():
    assert all(part_of(m) for m in project_modules())


def test_imports_only_go_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_module_is_part_of_an_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("case, graph, expected", [
    ("upward", {"rotator.core.record": {"rotator.engine"}, "rotator.engine": set()},
     ["rotator.core.record (layer 0) imports rotator.engine (layer 3)"]),
    ("sideways", {"backends.vault": {"backends.file"}, "backends.file": set()},
     ["backends.vault (layer 2) imports backends.file (layer 2)"]),
    ("down", {"rotator.cli": {"rotator.engine"}, "rotator.engine": set()}, []),
])
def test_the_layer_check_catches_what_it_must(case, graph, expected):
    assert upward_imports(graph) == expected


def test_the_cycle_check_catches_a_hidden_cycle(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("def f():\n    from rotator.daemon import RotationDaemon\n")
    known = {"rotator.daemon", "rotator.triggers.http"}
    assert imports_of(module, "rotator.triggers.http", known) == {"rotator.daemon"}
    graph = {"rotator.daemon": {"rotator.triggers.http"}, "rotator.triggers.http": {"rotator.daemon"}}
    assert cycles(graph) == [["rotator.daemon", "rotator.triggers.http"]]


def test_the_engine_loads_no_concrete_store_boto3_hvac_yaml_or_apscheduler():
    loaded = modules_after_import("rotator.engine")
    forbidden = {"boto3", "botocore", "hvac", "backends.vault", "backends.aws_secretsmanager", "backends.file",
                 "rotator.config", "rotator.daemon", "yaml", "apscheduler"}
    assert not forbidden & loaded, forbidden & loaded


def test_the_leaf_layer_loads_nothing_of_the_project_above_it():
    loaded = modules_after_import("rotator.core.target, rotator.core.record, rotator.core.schedule, "
                                  "rotator.core.options, rotator.core.tags")
    project = {m for m in loaded if m.split(".")[0] in ("rotator", "backends")}
    assert all(m == "rotator" or m.startswith("rotator.core") for m in project), project
