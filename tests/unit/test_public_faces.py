"""Each package of the product or the simulator that re-exports names keeps a sorted ``__all__``.

A package whose ``__init__`` is only a docstring has its modules as its face.
"""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.support.import_graph import PRODUCT, SIMULATOR, component_of, modules


def _re_exports(source: str) -> bool:
    return any(isinstance(node, ast.ImportFrom) for node in ast.parse(source).body)


FACES = sorted(
    name
    for name, path in modules().items()
    if path.name == "__init__.py"
    and component_of(name) in {*PRODUCT, SIMULATOR}
    and _re_exports(path.read_text())
)


@pytest.mark.parametrize("package", FACES)
def test_a_package_re_exporting_names_lists_them_sorted_in_all(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} re-exports names but has no __all__"
    assert list(exported) == sorted(exported)
    assert [name for name in exported if not hasattr(module, name)] == []
