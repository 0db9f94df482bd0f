"""Which package imports which, and the one direction those imports must keep.

Layers, top to bottom, with what each component may import besides itself::

    tools    simulator, bench             the whole product (bench: the simulator too)
    top      mediaflow.cli                everything in the product
             mediaflow.ops                everything in the product but the CLI
    stages   mediaflow.producers          core
             mediaflow.processors.<stage> core, storage; never another stage
    storage  mediaflow.storage            core
    core     mediaflow (everything else)  nothing above it

Every ``import`` counts, wherever it is written: at module top, inside a
function, under ``TYPE_CHECKING``, or as ``importlib.import_module("...")``.
Two more rules hold in the product. No module is imported by a computed
name, since nobody could check where such an import points. No other
component is imported inside a function: that only dodges load order, and
means the layer is wrong (a component may still load its own optional parts
lazily, like the PostgreSQL store).

Everywhere, tests included, the card's folders (``producers/``...) are
imported as ``mediaflow.producers``...: importing one by its folder name
would load a second copy of every module in it.

``python -m tests.support.import_graph`` prints the package-level graph and
any import against the direction.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

CORE = "mediaflow"
STORAGE = "mediaflow.storage"
PRODUCERS = "mediaflow.producers"
PROCESSORS = "mediaflow.processors"
STAGES = (
    PRODUCERS,
    *sorted(
        f"{PROCESSORS}.{folder.name}"
        for folder in (REPO_ROOT / "processors").iterdir()
        if (folder / "__init__.py").is_file()
    ),
)
"""Every processor folder is a stage of its own (and the producers are one)."""
OPS = "mediaflow.ops"
CLI = "mediaflow.cli"
SIMULATOR = "simulator"
BENCH = "bench"

PRODUCT = (CORE, STORAGE, PROCESSORS, *STAGES, OPS, CLI)

MAY_IMPORT: Mapping[str, frozenset[str]] = {
    CORE: frozenset(),
    STORAGE: frozenset({CORE}),
    PRODUCERS: frozenset({CORE}),
    PROCESSORS: frozenset({CORE}),
    **{stage: frozenset({CORE, STORAGE}) for stage in STAGES if stage != PRODUCERS},
    OPS: frozenset({CORE, STORAGE, PROCESSORS, *STAGES}),
    CLI: frozenset({CORE, STORAGE, PROCESSORS, *STAGES, OPS}),
    SIMULATOR: frozenset(PRODUCT),
    BENCH: frozenset({*PRODUCT, SIMULATOR}),
}
"""Component -> the other components it may import (its own is always allowed)."""

LAYER = {
    CORE: "core",
    STORAGE: "storage",
    PROCESSORS: "stages",
    **dict.fromkeys(STAGES, "stages"),
    OPS: "top",
    CLI: "top",
    SIMULATOR: "tools",
    BENCH: "tools",
}


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement (or ``import_module`` call) of one module."""

    importer: str
    imported: str
    path: Path
    line: int
    nested: bool
    """Written inside a function or class body rather than at module top."""

    def where(self) -> str:
        """``path:line``, relative to the repository when the file is in it."""
        path = (
            self.path.relative_to(REPO_ROOT) if self.path.is_relative_to(REPO_ROOT) else self.path
        )
        return f"{path}:{self.line}"


def package_dirs(root: Path = REPO_ROOT) -> dict[str, str]:
    """Repository folder -> the package it installs as (pyproject's package-dir mapping)."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {folder: package for package, folder in setuptools.get("package-dir", {}).items()}


def modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of the product, the simulator and the bench, by its import name."""
    folders = {CORE: CORE, SIMULATOR: SIMULATOR, BENCH: BENCH, **package_dirs(root)}
    found = {}
    for folder, package in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def component_of(module: str) -> str | None:
    """The component a module belongs to; ``None`` outside the repository's code."""
    if module == "mediaflow.__main__":
        return CLI
    for component in sorted(LAYER, key=len, reverse=True):
        if module == component or module.startswith(component + "."):
            return component
    return None


def imports_in(module: str, path: Path, known: Iterable[str]) -> Iterator[Import]:
    """Every import ``module`` (read from ``path``) makes, resolved to a module name.

    ``from package import name`` counts as importing ``package.name`` when that
    is a module of the repository (``known``), else as importing ``package``.
    """
    known = set(known)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node, nested in _walk(tree, nested=False):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        elif isinstance(node, ast.Call) and _is_import_call(node):
            argument = node.args[0] if node.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names = [argument.value]
            else:
                names = ["<computed>"]
        for name in dict.fromkeys(names):
            yield Import(module, name, path, node.lineno, nested)


def _walk(node: ast.AST, *, nested: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, nested
        inner = nested or isinstance(
            child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
        )
        yield from _walk(child, nested=inner)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _is_import_call(node: ast.Call) -> bool:
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return name in {"import_module", "__import__"}


def all_imports(root: Path = REPO_ROOT) -> list[Import]:
    """Every import of every module of the product, the simulator and the bench."""
    found = modules(root)
    return [i for module, path in found.items() for i in imports_in(module, path, found)]


def violations(imports: Iterable[Import], folder_names: Iterable[str]) -> list[str]:
    """One line per import against the direction, with where it is written.

    Args:
        imports: the imports to check.
        folder_names: repository folders that install under another name
            (``producers`` for ``mediaflow.producers``): importing them by the
            folder name is always wrong.
    """
    folder_names = set(folder_names)
    found = []
    for item in imports:
        source = component_of(item.importer)
        target = component_of(item.imported)
        top = item.imported.partition(".")[0]
        if top in folder_names:
            found.append(
                f"{item.where()}: imports {item.imported!r} by its folder name; "
                f"use mediaflow.{item.imported}"
            )
        elif item.imported == "<computed>" and source in PRODUCT:
            found.append(f"{item.where()}: imports a module by a computed name; import it by name")
        elif source and target and target != source and target not in MAY_IMPORT[source]:
            found.append(
                f"{item.where()}: {source} ({LAYER[source]}) imports {item.imported} "
                f"({LAYER[target]})"
            )
        elif item.nested and source in PRODUCT and target and target != source:
            found.append(
                f"{item.where()}: imports {item.imported} inside a function; "
                "import it at module top"
            )
    return found


def graph(imports: Iterable[Import]) -> dict[str, Counter[str]]:
    """Component -> the other components it imports, with how many import statements."""
    edges: dict[str, Counter[str]] = defaultdict(Counter)
    for item in imports:
        source, target = component_of(item.importer), component_of(item.imported)
        if source and target and source != target:
            edges[source][target] += 1
    return dict(edges)


def render(edges: Mapping[str, Counter[str]]) -> str:
    """The graph as text, one component per line, bottom layer first."""
    order = list(LAYER)
    lines = [f"{'layer':<8} {'component':<33} imports (statements)"]
    for component in order:
        targets = edges.get(component, Counter())
        shown = ", ".join(
            f"{target} ({targets[target]})" for target in sorted(targets, key=order.index)
        )
        name = f"{component} (core)" if component == CORE else component
        lines.append(f"{LAYER[component]:<8} {name:<33} {shown or '-'}")
    return "\n".join(lines)


def main() -> int:
    """Print the graph and the imports against the direction; 1 if there are any."""
    imports = all_imports()
    print(render(graph(imports)))
    problems = violations(imports, package_dirs())
    print(f"\nimports against the direction: {len(problems) or 'none'}")
    for line in problems:
        print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
