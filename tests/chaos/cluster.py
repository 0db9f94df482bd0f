"""The chaos run's handle on the three-node cluster of ``deploy/cluster.sh``.

Brokers are killed and started with the script (the same one ``make
cluster-up`` runs); who leads a partition comes from the cluster's metadata,
who leads the metadata quorum from the script (``cluster.sh controller``).
:meth:`Cluster.status_line` runs ``mediaflow status`` as an operator would,
to show that it names the broker that is down and the partitions left
under-replicated.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from mediaflow.config import REPO_ROOT
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.replication import read_replication
from mediaflow.kafka.topics import TopicSpec

SCRIPT = REPO_ROOT / "deploy" / "cluster.sh"


class Cluster:
    """Three Kafka nodes (1, 2, 3) under one stack dir."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Use the cluster named by ``MEDIAFLOW_STACK_DIR`` and ``MEDIAFLOW_CLUSTER_PORTS``."""
        self.env = dict(os.environ if environ is None else environ, PYTHON=sys.executable)
        self.bootstrap = self._script("bootstrap").strip()

    def _script(self, *args: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), *args],
            env=self.env,
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def running(self) -> bool:
        """Whether all three nodes are running."""
        done = subprocess.run(
            [str(SCRIPT), "status"], env=self.env, cwd=REPO_ROOT, capture_output=True
        )
        return done.returncode == 0

    def up(self) -> None:
        """Start the nodes that are not running; return once all three are registered."""
        print(self._script("up").rstrip())

    def down(self) -> None:
        """Stop every node."""
        print(self._script("down").rstrip())

    def kill_all(self) -> None:
        """SIGKILL every node (a throwaway cluster's quick stop)."""
        print(self._script("kill", "all").rstrip())

    def kill(self, node: int) -> None:
        """SIGKILL ``node`` (a crash: no controlled shutdown)."""
        print("    " + self._script("kill", str(node)).strip())

    def stop(self, node: int) -> None:
        """SIGTERM ``node`` and wait until it is gone (a controlled shutdown)."""
        print("    " + self._script("stop", str(node)).strip())

    def start(self, node: int) -> None:
        """Start ``node`` and wait until it answers."""
        print("    " + self._script("start", str(node)).strip().replace("\n", "\n    "))

    def controller(self) -> int:
        """The node leading the metadata quorum (the active controller)."""
        return int(self._script("controller").strip())

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node leading ``topic``'s ``partition``.

        Raises:
            TimeoutError: the partition has no leader for 30 s.
        """
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + 30
        while True:
            leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader
            if leader > 0:
                return int(leader)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] has no leader")
            time.sleep(0.5)

    def wait_fenced(self, node: int, timeout_s: float = 30.0) -> None:
        """Wait until the cluster's metadata no longer lists ``node`` (its session expired)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if node not in admin.list_topics(timeout=5).brokers:
                    return
            except KafkaException:
                pass  # asked the dead node: ask again
            time.sleep(0.5)

    def wait_in_sync(self, specs: Sequence[TopicSpec], timeout_s: float = 120.0) -> float:
        """Wait until every partition of ``specs`` is fully in sync; return the seconds waited.

        Raises:
            TimeoutError: still out of sync after ``timeout_s``.
        """
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        started = time.monotonic()
        while True:
            try:
                if read_replication(admin, specs, timeout=10).ok:
                    return time.monotonic() - started
            except BrokerUnavailable:
                pass  # the node just started may not answer yet: ask again
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"partitions not back in sync after {timeout_s:.0f} s")
            time.sleep(0.5)

    @staticmethod
    def status_line(environ: Mapping[str, str]) -> str:
        """The ``replication:`` line of ``mediaflow status`` run with ``environ``."""
        done = subprocess.run(
            [sys.executable, "-m", "mediaflow", "status", "--interval", "0"],
            env=dict(environ),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for line in done.stdout.splitlines():
            if line.startswith("replication:"):
                return line
        return f"replication: (no status: {done.stderr.strip()[-300:]})"


@dataclasses.dataclass
class ClusterFault:
    """One cluster fault as it played.

    Attributes:
        name: what was done (``SIGKILL node 2, leader of ...``).
        at: wall-clock time (epoch seconds) the fault began.
        seen: the ``replication:`` line ``mediaflow status`` printed while it lasted.
        in_sync_s: seconds from the node's restart until every partition was
            in sync again (for a rolling restart, the longest of the three).
    """

    name: str
    at: float
    seen: str = ""
    in_sync_s: float = 0.0


class ClusterChaos:
    """Plays the cluster faults of a chaos run and remembers them."""

    def __init__(self, cluster: Cluster, specs: Sequence[TopicSpec], environ: Mapping[str, str]):
        """Break ``cluster``; ``specs`` are the run's topics, ``environ`` its roles' environment."""
        self.cluster = cluster
        self.specs = tuple(specs)
        self.environ = dict(environ)
        self.faults: list[ClusterFault] = []
        self._down: list[tuple[int, ClusterFault, threading.Thread]] = []
        self._starting: list[threading.Thread] = []

    def kill(self, target: str) -> None:
        """SIGKILL a node: ``leader`` (of webhook partition 0), ``controller``, or 1 to 3."""
        self.settle()
        topic = next(s.name for s in self.specs if s.role == "webhooks")
        if target == "leader":
            node = self.cluster.leader_of(topic)
            name = f"SIGKILL node {node}, leader of {topic}[0]"
        elif target == "controller":
            node = self.cluster.controller()
            name = f"SIGKILL node {node}, the active controller"
        else:
            node = int(target)
            name = f"SIGKILL node {node}"
        fault = ClusterFault(name, time.time())
        self.cluster.kill(node)
        self.faults.append(fault)
        # `mediaflow status` takes seconds with a node down: look while the schedule goes on.
        looking = threading.Thread(target=self._look, args=(fault, node), daemon=True)
        looking.start()
        self._down.append((node, fault, looking))

    def _look(self, fault: ClusterFault, node: int) -> None:
        # As an operator would, a few seconds later: once the cluster has fenced the node.
        self.cluster.wait_fenced(node)
        fault.seen = self.cluster.status_line(self.environ)
        print(f"    {fault.seen[:300]}")

    def restart(self) -> None:
        """Start the node killed last, in the background: the schedule goes on while it boots.

        Once ``mediaflow status`` has looked at the cluster without it; then
        waits until every partition is in sync again (:meth:`settle` waits for that).
        """
        node, fault, looking = self._down.pop()

        def start() -> None:
            looking.join()
            self.cluster.start(node)
            fault.in_sync_s = self.cluster.wait_in_sync(self.specs)
            print(f"    every partition in sync {fault.in_sync_s:.1f} s after node {node} started")

        starting = threading.Thread(target=start, name=f"start-node-{node}", daemon=True)
        starting.start()
        self._starting.append(starting)

    def starting(self) -> bool:
        """Whether a node started again is still booting or catching up."""
        self._starting = [t for t in self._starting if t.is_alive()]
        return bool(self._starting)

    def settle(self) -> None:
        """Wait until every node started again is up and every partition in sync."""
        while self._starting:
            self._starting.pop().join()

    def rolling(self) -> None:
        """Restart the three nodes one after the other, each once the cluster is in sync again."""
        self.settle()
        fault = ClusterFault("rolling restart of nodes 1, 2, 3", time.time())
        self.faults.append(fault)
        for node in (1, 2, 3):
            self.cluster.stop(node)
            if not fault.seen:
                self._look(fault, node)
            self.cluster.start(node)
            fault.in_sync_s = max(fault.in_sync_s, self.cluster.wait_in_sync(self.specs))
        print(f"    rolling restart done; longest wait for sync {fault.in_sync_s:.1f} s")

    def restore(self) -> None:
        """Start every node this run killed and did not start again (whatever happened)."""
        while self._down:
            self.restart()
        self.settle()


__all__ = ["Cluster", "ClusterChaos", "ClusterFault"]
