"""The architecture, checked from the source: the engine stands alone, no import cycles, no private names borrowed.

Every import statement of every module of `dip_engine` and `pipeline` counts, those inside
functions and under `TYPE_CHECKING` included: a lazy import hides a cycle from Python, not from
a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dip_engine", "pipeline")


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module
    module: str  # the imported module (for `from m import name`: m.name when that is a module)
    name: str | None  # the name taken from `module`, for `from module import name`
    line: int


def module_files() -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its own name, for its __init__)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    yield Import(name, submodule, None, node.lineno)
                else:
                    yield Import(name, base, alias.name, node.lineno)


def all_imports() -> list[Import]:
    modules = module_files()
    return [found for name, path in modules.items() for found in imports_of(name, path, modules)]


def internal(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one that imports itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_parser_sees_the_imports_it_must() -> None:
    """The checks below are only as good as the import list: spot-check it against known imports."""
    found = {(item.importer, item.module, item.name) for item in all_imports()}
    assert ("pipeline.ledger", "pipeline.records", "is_done") in found
    assert ("pipeline.io", "pipeline.io.image", "read_image") in found
    assert ("pipeline.cli.run_command", "pipeline.run.execute", "execute") in found  # inside a function
    assert ("dip_engine.fit", "torch", None) in found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]] and cycles({"a": {"b"}, "b": set()}) == []


def test_the_engine_imports_nothing_of_the_pipeline() -> None:
    offending = [item for item in all_imports() if item.importer.startswith("dip_engine") and item.module.split(".")[0] == "pipeline"]
    assert offending == [], "dip_engine is pure PyTorch: it must not import pipeline"


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for item in all_imports():
        if internal(item.module) and item.module != item.importer:
            graph.setdefault(item.importer, set()).add(item.module)
    assert cycles(graph) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_takes_another_modules_private_name(package: str) -> None:
    """`from m import _name` across modules, or a private module (`_ffmpeg`) imported from outside its package."""
    offending = []
    for item in all_imports():
        if not item.importer.startswith(package) or not internal(item.module):
            continue
        if item.name is not None and item.name.startswith("_") and not item.name.startswith("__"):
            offending.append(f"{item.importer}:{item.line} takes {item.module}.{item.name}")
        private_at = [i for i, part in enumerate(item.module.split(".")) if part.startswith("_") and not part.startswith("__")]
        if private_at:
            owner = ".".join(item.module.split(".")[: private_at[0]])
            if not item.importer.startswith(owner + "."):
                offending.append(f"{item.importer}:{item.line} imports the private module {item.module}")
    assert offending == []
