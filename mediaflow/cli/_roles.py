"""``mediaflow serve ...`` / ``mediaflow run ...``: the long-running roles, and a supervisor.

A processor role is a :class:`~mediaflow.kafka.stage_runner.StageSpec` that
:func:`~mediaflow.kafka.stage_runner.run_stage` runs; the HTTP roles expose
``main(args, settings) -> int``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from mediaflow.cli._args import positive_int, positive_seconds
from mediaflow.config import Settings
from mediaflow.errors import EXIT_CONFIG, ConfigError, UsageError
from mediaflow.kafka.stage_runner import StageSpec, run_stage
from mediaflow.logging import get_logger
from mediaflow.processors.detector import stage as detector
from mediaflow.processors.downloader import stage as downloader
from mediaflow.processors.projection import api, consumer
from mediaflow.producers.webhook import server as webhooks

log = get_logger("mediaflow.supervisor")

PROCESSORS: dict[str, StageSpec] = {
    "detector": detector.STAGE,
    "downloader": downloader.STAGE,
    "projection": consumer.STAGE,
}
"""The roles that consume Kafka: the ones ``--idle-exit`` can drain."""

SERVERS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "webhooks": webhooks.main,
    "api": api.main,
}
"""The HTTP roles."""

ROLES = ("webhooks", "detector", "downloader", "projection", "api")
"""Every role, in data-flow order (``run all`` starts them in this order)."""


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``run`` to the CLI."""
    serve = subparsers.add_parser("serve", help="run an HTTP role in the foreground")
    serve.add_argument("role", choices=list(SERVERS))
    serve.add_argument(
        "--workers", type=positive_int, default=1, help="processes sharing the port (webhooks)"
    )
    serve.set_defaults(handler=run_role)

    run = subparsers.add_parser(
        "run", help="run a pipeline role (or all of them) in the foreground"
    )
    run.add_argument("role", choices=[*ROLES, "all"])
    run.add_argument(
        "--workers", type=positive_int, default=1, help="processes sharing the port (webhooks)"
    )
    run.add_argument(
        "--idle-exit",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="drain mode: exit once idle this long (processors only)",
    )
    run.set_defaults(handler=run_role)


PROCESSOR_METRICS_PORTS = {"detector": 9101, "downloader": 9102, "projection": 9103}
"""Where ``mediaflow run all`` exposes each processor's Prometheus metrics."""


def run_role(args: argparse.Namespace, settings: Settings) -> int:
    """Run one role, or supervise all of them.

    Processor roles serve Prometheus metrics on ``MEDIAFLOW_METRICS_PORT`` when it
    is set (the HTTP roles serve ``/metrics`` on their own port).
    """
    if args.workers > 1 and args.role != "webhooks":
        raise UsageError(
            "--workers applies to the webhooks role only (mediaflow serve webhooks --workers N); "
            "other roles scale by running more copies of them"
        )
    idle_exit = getattr(args, "idle_exit", None)
    if idle_exit is not None and args.role not in PROCESSORS:
        raise UsageError(
            f"--idle-exit applies to the processor roles only ({', '.join(PROCESSORS)}); "
            "the others serve until stopped"
        )
    if args.role == "all":
        return supervise(settings)
    if args.role in PROCESSORS:
        return run_stage(PROCESSORS[args.role], settings, idle_exit_s=idle_exit)
    return SERVERS[args.role](args, settings)


def supervise(settings: Settings) -> int:
    """Start every role as a child process; stop them all on Ctrl-C or SIGTERM.

    Shutdown order: SIGTERM every child (each drains and commits), wait up to
    30 s, then SIGKILL stragglers. A child that dies on its own is reported
    and restarted after a pause, so one crashing role does not stop the rest,
    except one that exits with :data:`~mediaflow.errors.EXIT_CONFIG`: its
    configuration would be refused again, so every role is stopped instead.

    Raises:
        ConfigError: a role stopped on its configuration (its message is above).

    """
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def start(role: str) -> None:
        env = dict(os.environ)
        if role in PROCESSOR_METRICS_PORTS:
            env["MEDIAFLOW_METRICS_PORT"] = str(PROCESSOR_METRICS_PORTS[role])
        children[role] = subprocess.Popen([sys.executable, "-m", "mediaflow", "run", role], env=env)

    def on_signal(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for role in ROLES:
        start(role)
    print(
        "mediaflow is running:\n"
        f"  webhooks  http://{settings.webhook_host}:{settings.webhook_port}/webhooks/wapi "
        f"(also /webhooks/evolution, /webhooks/zapi, /healthz, /readyz, /metrics)\n"
        f"  API       http://{settings.api_host}:{settings.api_port}/media  (Bearer token)\n"
        "  metrics   "
        + ", ".join(f"{r} :{p}/metrics" for r, p in PROCESSOR_METRICS_PORTS.items())
        + "\n"
        f"  Kafka     {settings.kafka.bootstrap_servers}\n"
        f"  S3        {settings.s3.endpoint_url}  bucket {settings.s3.bucket}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    misconfigured = None
    while not stopping:
        time.sleep(0.5)
        for role, child in list(children.items()):
            if child.poll() is None or stopping:
                continue
            if child.returncode == EXIT_CONFIG:
                misconfigured = role
                stopping = True
                break
            log.error("role_exited", role=role, code=child.returncode)
            time.sleep(2)
            start(role)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("mediaflow stopped.")
    if misconfigured is not None:
        raise ConfigError(
            f"the {misconfigured} role refused its configuration (its message is above); "
            "every role was stopped: fix the setting and start again"
        )
    return 0
