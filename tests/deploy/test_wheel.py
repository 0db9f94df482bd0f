"""The wheel installs one import name, ``mediaflow``, with its data files inside.

The card's folders (``producers/``, ``processors/``, ``storage/``, ``schemas/``)
sit at the top of the repository but install as ``mediaflow.producers`` and so
on: a generic top-level ``storage`` in a user's site-packages would collide
with anything else of that name. The simulator and the benchmarks stay out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Everything a clean checkout holds except what builds and runs leave behind
# (a stale build/lib would otherwise end up in the wheel).
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".stack",
    ".hypothesis",
    ".*_cache",
    "__pycache__",
    "build",
    "dist",
    "*.egg-info",
    "results",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from a copy of the checkout, as ``pip install .`` would build it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (path,) = (work / "dist").glob("mediaflow-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def _names(wheel: zipfile.ZipFile) -> set[PurePosixPath]:
    return {PurePosixPath(name) for name in wheel.namelist()}


def _installed_path(source: Path) -> PurePosixPath:
    """Where a file of the checkout lands in the wheel (through the package-dir mapping)."""
    relative = source.relative_to(REPO_ROOT)
    mapping = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in mapping.get("package-dir", {}).items():
        if relative.parts[0] == folder:
            return PurePosixPath(*package.split("."), *relative.parts[1:])
    return PurePosixPath(*relative.parts)


def _files(folder: str, pattern: str) -> list[Path]:
    return sorted(p for p in (REPO_ROOT / folder).rglob(pattern) if "__pycache__" not in p.parts)


def test_the_only_top_level_import_name_is_mediaflow(wheel: zipfile.ZipFile) -> None:
    top = {name.parts[0] for name in _names(wheel)}
    imports = {name for name in top if not name.endswith(".dist-info")}
    assert imports == {"mediaflow"}
    assert len(top - imports) == 1  # and its dist-info


def test_every_module_of_the_product_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    modules = [p for folder in _PRODUCT for p in _files(folder, "*.py")]
    missing = {_installed_path(p) for p in modules} - _names(wheel)
    assert not missing
    assert PurePosixPath("mediaflow/producers/webhook/server.py") in _names(wheel)


def test_the_simulator_bench_and_tests_stay_out_of_the_wheel(wheel: zipfile.ZipFile) -> None:
    assert not {name for name in _names(wheel) if {"simulator", "bench", "tests"} & set(name.parts)}


@pytest.mark.parametrize(
    ("folder", "pattern"),
    [
        ("schemas", "*.avsc"),
        ("storage", "*.sql"),
        ("processors", "openapi.yaml"),
    ],
)
def test_data_files_ship_inside_their_packages(
    wheel: zipfile.ZipFile, folder: str, pattern: str
) -> None:
    data = _files(folder, pattern)
    assert data, f"no {pattern} under {folder}/"
    assert {_installed_path(p) for p in data} <= _names(wheel)
    assert all(p.parts[0] == "mediaflow" for p in map(_installed_path, data))


_PRODUCT = ("mediaflow", "producers", "processors", "storage", "schemas")
