"""The short chaos run's cluster boots in the background while the rest of the suite runs.

Three Kafka JVMs take some 20 s to start on a two-core machine: when the
session includes ``test_chaos_short.py``, ``deploy/cluster.sh up`` starts as
soon as collection ends, and the short run is moved to the end of the
session. Its fixture (:func:`chaos_cluster`) waits for that start, and
SIGKILLs the nodes afterwards if this session started them (a throwaway
cluster: no controlled shutdown to wait for); a session that ends before
the short run (interrupted, ``-x``) stops them at its end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.chaos.cluster import SCRIPT, Cluster

SHORT_RUN = "test_chaos_short.py"
_booting: dict[str, subprocess.Popen[bytes]] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the short chaos run last (a stable sort keeps every other test's order)."""
    items.sort(key=lambda item: item.path.name == SHORT_RUN)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start booting the cluster if the short chaos run is selected and it is not running."""
    if session.config.option.collectonly:
        return
    if any(item.path.name == SHORT_RUN for item in session.items) and not Cluster().running():
        _booting["up"] = subprocess.Popen(
            [str(SCRIPT), "up"],
            env=dict(os.environ, PYTHON=sys.executable),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


def pytest_sessionfinish() -> None:
    """Stop a cluster booted for a short chaos run that never ran (interrupted, deselected)."""
    booting = _booting.pop("up", None)
    if booting is not None:
        booting.communicate()
        Cluster().kill_all()


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[Cluster]:
    """The three-node cluster, up; stopped after the session if the session started it."""
    cluster = Cluster()
    booting = _booting.pop("up", None)
    if booting is not None:
        output, _ = booting.communicate()
        print(output.decode(errors="replace"))
        assert booting.returncode == 0, "deploy/cluster.sh up failed (output above)"
    started_here = booting is not None or not cluster.running()
    cluster.up()
    yield cluster
    if started_here:
        cluster.kill_all()
