"""Imports run one way: core <- storage <- stages <- ops and CLI; simulator and bench on top.

``pytest -s`` on this file (or ``python -m tests.support.import_graph``)
prints the package-level graph.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import (
    REPO_ROOT,
    all_imports,
    graph,
    imports_in,
    modules,
    package_dirs,
    render,
    violations,
)


def test_every_import_of_the_product_simulator_and_bench_runs_down_the_layers() -> None:
    imports = all_imports()
    print(render(graph(imports)))
    assert violations(imports, package_dirs()) == []


def test_the_tests_import_the_card_folders_by_their_package_names() -> None:
    folders = package_dirs()
    imports = [
        item
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        for item in imports_in("tests.module", path, known=())
    ]
    assert [line for line in violations(imports, folders) if "folder name" in line] == []


def _check(tmp_path: Path, module: str, source: str) -> list[str]:
    path = tmp_path / "module.py"
    path.write_text(source)
    return violations(imports_in(module, path, modules()), package_dirs())


@pytest.mark.parametrize(
    ("module", "source", "complaint"),
    [
        (
            "mediaflow.storage.projection.rows",
            "def load():\n    from mediaflow.processors.projection import consumer\n",
            "mediaflow.storage (storage) imports mediaflow.processors.projection.consumer",
        ),
        (
            "mediaflow.codec",
            "from mediaflow.storage.s3 import s3_client\n",
            "mediaflow (core) imports mediaflow.storage.s3",
        ),
        (
            "mediaflow.processors.detector.extra",
            "from ..downloader import stage\n",
            "imports mediaflow.processors.downloader.stage",
        ),
        (
            "mediaflow.producers.webhook.extra",
            "from mediaflow import ops\n",
            "imports mediaflow.ops (top)",
        ),
        (
            "mediaflow.ops.extra",
            "from mediaflow import cli\n",
            "mediaflow.ops (top) imports mediaflow.cli",
        ),
        (
            "mediaflow.cli.extra",
            "from simulator import media\n",
            "imports simulator.media (tools)",
        ),
        (
            "mediaflow.cli.extra",
            "import importlib\n\nimportlib.import_module(ROLES['api'])\n",
            "computed name",
        ),
        (
            "mediaflow.cli.extra",
            "def init():\n    from mediaflow.storage.s3 import s3_client\n",
            "imports mediaflow.storage.s3 inside a function",
        ),
        (
            "mediaflow.kafka.extra",
            "import storage.s3\n",
            "by its folder name",
        ),
    ],
)
def test_an_import_against_the_direction_is_named_with_its_place(
    tmp_path: Path, module: str, source: str, complaint: str
) -> None:
    (problem,) = _check(tmp_path, module, source)
    assert complaint in problem
    assert problem.startswith(f"{tmp_path / 'module.py'}:")


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("mediaflow.processors.downloader.extra", "from mediaflow.storage.s3 import s3_client\n"),
        ("mediaflow.cli.extra", "from mediaflow.processors.projection import rebuild\n"),
        ("mediaflow.storage.projection.extra", "def f():\n    from . import postgres\n"),
        ("simulator.extra", "from mediaflow.storage.s3 import s3_client\n"),
        ("bench.extra", "import importlib\n\nimportlib.import_module(name)\n"),
    ],
)
def test_imports_down_the_layers_and_lazy_own_parts_are_allowed(
    tmp_path: Path, module: str, source: str
) -> None:
    assert _check(tmp_path, module, source) == []
