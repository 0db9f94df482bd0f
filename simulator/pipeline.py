"""The whole pipeline on the local stack, as child processes, for the demo and the benchmarks.

A :class:`Run` is one isolated pipeline: its own topic prefix, bucket,
projection database, ports and instance name (so its transactional ids never
fence anyone else's), configured to download from a fake W-API and CDN::

    run = Run.create("demo", wapi_url=sim.wapi_url, cdn_url=sim.cdn_url)
    run.prepare()                     # topics, bucket, projection database
    with Pipeline(run) as pipeline:   # every role, stopped on exit
        ... send webhooks to run.webhook_url, poll run.store ...

Each role's output goes to ``<run dir>/<role>.log``. A role named
``<role>@<n>`` is another copy of ``<role>`` with its own instance name
(``<run id>-<n>``), as a second machine would run it: a consumer group of two.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.errors import UsageError
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import apply, delete, load_layout
from mediaflow.media_state import MediaRow
from mediaflow.process import settings_env
from mediaflow.storage.projection import ProjectionStore, open_store
from mediaflow.storage.s3 import ensure_bucket, s3_client
from simulator.scratch import drop_bucket, with_retry_delays

ROLES = ("webhooks", "detector", "downloader", "projection", "api")
"""Every role the demo runs, in data-flow order."""

COPY_MARK = "@"
"""``detector@2`` in a pipeline's roles is a second detector, with its own instance name."""

RETRY_DELAYS_S = (1, 2, 4)
"""Short retry tiers, so a media that failed an attempt comes back while the run watches."""

RUNS_DIR = REPO_ROOT / ".stack" / "runs"
_STOP_TIMEOUT_S = 20.0
_LOG_TAIL_LINES = 15
# The log event each consuming role writes once it owns partitions.
_ASSIGNED = {
    "detector": "partitions_assigned",
    "downloader": "partitions_assigned",
    "projection": "projection_assigned",
    "notifier": "partitions_assigned",
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One isolated pipeline's settings and working directory.

    ``environ`` is the environment the roles start from (secrets the tenants
    file names live there); their settings come from ``settings``.
    """

    run_id: str
    directory: Path
    settings: Settings
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        kind: str,
        *,
        wapi_url: str,
        cdn_url: str,
        retry_delays_s: tuple[int, ...] = RETRY_DELAYS_S,
        environ: Mapping[str, str] | None = None,
        **overrides: str,
    ) -> Run:
        """Settings for a fresh run: unique prefix, bucket and database; free ports.

        Args:
            kind: a short lowercase word naming what the run is for (``demo``, ``bench``).
            wapi_url: the (fake) W-API base URL.
            cdn_url: the (fake) WhatsApp CDN base URL.
            retry_delays_s: the retry tiers' delays.
            environ: the environment to start from (``os.environ`` when omitted).
            overrides: more settings, by variable name without the prefix
                (``download_concurrency="16"``).

        """
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = f"{kind}-{stamp}-{os.getpid() % 10000:04d}"
        directory = RUNS_DIR / run_id
        directory.mkdir(parents=True, exist_ok=True)
        topics = directory / "topics.toml"
        topics.write_text(
            with_retry_delays((REPO_ROOT / "deploy" / "topics.toml").read_text(), retry_delays_s)
        )
        env = dict(os.environ if environ is None else environ)
        env.update(
            {
                "MEDIAFLOW_TOPIC_PREFIX": f"{run_id}.",
                "MEDIAFLOW_TOPICS_FILE": str(topics),
                "MEDIAFLOW_S3_BUCKET": run_id,
                "MEDIAFLOW_PROJECTION_DB_URL": f"sqlite:///{directory / 'projection.db'}",
                "MEDIAFLOW_WAPI_BASE_URL": wapi_url,
                "MEDIAFLOW_CDN_BASE_URL": cdn_url,
                "MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES": "true",
                "MEDIAFLOW_WEBHOOK_PORT": str(free_port()),
                "MEDIAFLOW_API_PORT": str(free_port()),
                "MEDIAFLOW_INSTANCE_NAME": run_id,
                "MEDIAFLOW_BATCH_MAX_INTERVAL_S": "0.2",
                "MEDIAFLOW_LOG_FORMAT": "json",
            }
        )
        env.update({f"MEDIAFLOW_{k.upper()}": v for k, v in overrides.items()})
        return cls(run_id, directory, Settings.from_env(env), env)

    @property
    def webhook_url(self) -> str:
        """Base URL of this run's webhook receiver."""
        return f"http://{self.settings.webhook_host}:{self.settings.webhook_port}"

    @property
    def api_url(self) -> str:
        """Base URL of this run's read API."""
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def prepare(self) -> None:
        """Create the topics, the bucket and the projection database."""
        apply(admin_client(self.settings.kafka), load_layout(self.settings.kafka).specs)
        ensure_bucket(s3_client(self.settings.s3), self.settings.s3)
        open_store(self.settings.projection_db_url).close()

    def delete_topics(self) -> None:
        """Drop this run's topics (the bucket and database stay, to look at)."""
        specs = load_layout(self.settings.kafka).specs
        delete(admin_client(self.settings.kafka), [s.name for s in specs])

    def discard(self) -> None:
        """Drop this run's topics and bucket, for runs nobody looks at after (bench, tests).

        The directory stays: its logs are small and explain a failure.
        """
        self.delete_topics()
        drop_bucket(s3_client(self.settings.s3), self.settings.s3.bucket)

    def open_store(self) -> ProjectionStore:
        """The run's projection store."""
        return open_store(self.settings.projection_db_url)


class Pipeline:
    """Every role of a :class:`Run` as a child process, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, run: Run, roles: Iterable[str] = ROLES) -> None:
        """Prepare (not start) the roles."""
        self.run = run
        self.roles = tuple(roles)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def log_path(self, role: str) -> Path:
        """Where ``role`` writes its output."""
        return self.run.directory / f"{role.replace(COPY_MARK, '-')}.log"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each running role has used so far, its children included."""
        used = {}
        for role, child in self._children.items():
            if child.poll() is None:
                used[role] = process_tree_cpu_s(child.pid)
        return used

    def start(self, timeout_s: float = 60.0) -> Pipeline:
        """Start every role; return once the webhook receiver is ready and the API listens.

        Raises:
            UsageError: a role exited or the HTTP roles did not come up in time
                (the message carries the end of its log).

        """
        for role in self.roles:
            self._spawn(role)
        deadline = time.monotonic() + timeout_s
        if "webhooks" in self.roles:
            self._wait_until(lambda: _http_ok(f"{self.run.webhook_url}/readyz"), deadline)
        if "api" in self.roles:
            settings = self.run.settings
            self._wait_until(lambda: _listening(settings.api_host, settings.api_port), deadline)
        return self

    def kill(self, role: str) -> None:
        """SIGKILL ``role`` (no drain, no commit) and reap it; a role already gone is fine.

        Raises:
            KeyError: ``role`` was never started.

        """
        child = self._children[role]
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

    def terminate(self, role: str, timeout_s: float = _STOP_TIMEOUT_S + 10) -> int:
        """SIGTERM ``role`` and wait for it to drain, commit and close; return its code.

        Unlike :meth:`kill`, what it finished is committed. Either way the copy
        :meth:`restart` starts (same instance name) takes the partitions back
        at once: the detector and the downloader are static group members, and
        the projection leaves its group on SIGTERM. SIGKILL after ``timeout_s``
        (the role's own grace period is 20 s).

        Raises:
            KeyError: ``role`` was never started.

        """
        child = self._children[role]
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            return child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait(timeout=10)

    def restart(self, role: str, environ: Mapping[str, str] | None = None) -> None:
        """Start ``role`` again (after :meth:`kill` or an exit), appending to its log.

        Args:
            role: the role to start.
            environ: variables that override the run's settings for this start
                only (``{"MEDIAFLOW_S3_SECRET_KEY": "wrong"}``: a misconfigured copy).
        """
        self._spawn(role, environ)

    def command(
        self, role: str, environ: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that start ``role`` (``<role>@<n>``: copy ``n``)."""
        env = settings_env(self.run.settings, self.run.environ)
        base, _, copy = role.partition(COPY_MARK)
        if copy:
            # A second copy of a stage is a distinct static group member.
            env["MEDIAFLOW_INSTANCE_NAME"] = f"{self.run.settings.instance_name}-{copy}"
        env.update(environ or {})
        return [sys.executable, "-m", "mediaflow", "run", base], env

    def _spawn(self, role: str, environ: Mapping[str, str] | None = None) -> None:
        log = self.log_path(role).open("ab")
        self._logs.append(log)
        argv, env = self.command(role, environ)
        self._children[role] = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_assigned(self, timeout_s: float = 120.0) -> None:
        """Wait until every consuming role logged its partition assignment.

        A consumer group's first join can take a while when the broker still
        remembers members that died without leaving; measuring from before the
        join would charge that wait to the pipeline.

        Raises:
            UsageError: a role exited or did not get partitions in time.

        """
        consuming = [r for r in self.roles if r.partition(COPY_MARK)[0] in _ASSIGNED]
        deadline = time.monotonic() + timeout_s

        def assigned() -> bool:
            return all(
                _ASSIGNED[r.partition(COPY_MARK)[0]] in self.tail(r, lines=10_000)
                for r in consuming
            )

        self._wait_until(assigned, deadline)

    def dead(self) -> dict[str, int]:
        """Roles that exited, with their exit codes."""
        return {r: p.returncode for r, p in self._children.items() if p.poll() is not None}

    def ensure_alive(self) -> None:
        """Raise if any role exited.

        Raises:
            UsageError: names the role, its exit code and the end of its log.

        """
        for role, code in self.dead().items():
            raise UsageError(f"role {role} exited with code {code}:\n{self.tail(role)}")

    def tail(self, role: str, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of a role's log."""
        try:
            text = self.log_path(role).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> dict[str, int]:
        """SIGTERM every role (each drains and commits), SIGKILL stragglers; return exit codes.

        Shutdown order: the receiver first (no new input), then the stages
        downstream of it, so each can finish what the previous one handed over.
        """
        for role in self.roles:
            child = self._children.get(role)
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for child in self._children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
        for log in self._logs:
            log.close()
        return {role: child.returncode for role, child in self._children.items()}

    def __enter__(self) -> Pipeline:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _wait_until(self, ready: Callable[[], bool], deadline: float) -> None:
        while not ready():
            self.ensure_alive()
            if time.monotonic() > deadline:
                raise UsageError("the pipeline did not come up in time; see the role logs")
            time.sleep(0.3)


def copies(roles: Iterable[str], counts: Mapping[str, int]) -> tuple[str, ...]:
    """``roles`` with ``counts[role]`` copies of the roles named there (``detector#2``...)."""
    return tuple(
        f"{role}{COPY_MARK}{n}" if n > 1 else role
        for role in roles
        for n in range(1, counts.get(role, 1) + 1)
    )


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds used by process ``pid``, its reaped children and its living descendants."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue  # it ended between two reads
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), here 11-14 after the name.
        total += sum(int(v) for v in fields[11:15]) / _CLOCK_TICKS
        for task in tasks:
            try:
                pending += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return total


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def terminal_rows(
    store: ProjectionStore, media_ids: Iterable[str], terminal: Iterable[str]
) -> tuple[dict[str, MediaRow | None], int]:
    """Each media's projection row, and how many are in a ``terminal`` status."""
    final = set(terminal)
    rows = {media_id: store.get(media_id) for media_id in media_ids}
    done = sum(1 for row in rows.values() if row is not None and row.status in final)
    return rows, done


def wait_terminal(
    run: Run, media_ids: Collection[str], terminal: Iterable[str], timeout_s: float, poll_s: float
) -> tuple[dict[str, MediaRow | None], int]:
    """Poll ``run``'s projection until every media is ``terminal`` or ``timeout_s`` passed.

    Returns the last poll's :func:`terminal_rows`.
    """
    store = run.open_store()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows, done = terminal_rows(store, media_ids, terminal)
            if done == len(media_ids) or time.monotonic() >= deadline:
                return rows, done
            time.sleep(poll_s)
    finally:
        store.close()


__all__ = [
    "COPY_MARK",
    "RETRY_DELAYS_S",
    "ROLES",
    "RUNS_DIR",
    "Pipeline",
    "Run",
    "copies",
    "free_port",
    "process_tree_cpu_s",
    "terminal_rows",
    "wait_terminal",
]
