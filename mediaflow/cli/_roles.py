"""``mediaflow serve ...`` / ``mediaflow run ...``: the long-running roles.

A processor role is a :class:`~mediaflow.kafka.stage_runner.StageSpec` that
:func:`~mediaflow.kafka.stage_runner.run_stage` runs; the HTTP roles expose
``main(args, settings) -> int``. ``run all`` and ``--workers N`` run their
processes under the one :mod:`mediaflow.supervisor`.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from typing import Any

from mediaflow.cli._args import positive_int, positive_seconds
from mediaflow.config import Settings
from mediaflow.errors import UsageError
from mediaflow.kafka.stage_runner import StageSpec, run_stage
from mediaflow.ops import ui
from mediaflow.processors.detector import stage as detector
from mediaflow.processors.downloader import stage as downloader
from mediaflow.processors.notifier import stage as notifier
from mediaflow.processors.projection import api, consumer
from mediaflow.producers.webhook import metrics as webhook_metrics
from mediaflow.producers.webhook import server as webhooks
from mediaflow.serving import raise_open_files_limit
from mediaflow.supervisor import Child, mediaflow_command, supervise

PROCESSORS: dict[str, StageSpec] = {
    "detector": detector.STAGE,
    "downloader": downloader.STAGE,
    "projection": consumer.STAGE,
    "notifier": notifier.STAGE,
}
"""The roles that consume Kafka: the ones ``--idle-exit`` can drain."""

SERVERS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "webhooks": webhooks.main,
    "api": functools.partial(api.main, mount=ui.mount),
}
"""The HTTP roles."""

ROLES = ("webhooks", "detector", "downloader", "projection", "notifier", "api")
RELOADING = ("webhooks", "api")
"""Roles that reload their part of the tenant registry on SIGHUP (tenants; API tokens)."""
"""Every role, in data-flow order (``run all`` starts them in this order)."""

PROCESSOR_METRICS_PORTS = {
    "detector": 9101,
    "downloader": 9102,
    "projection": 9103,
    "notifier": 9104,
}
"""Where ``mediaflow run all`` exposes each processor's Prometheus metrics."""


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


def run_role(args: argparse.Namespace, settings: Settings) -> int:
    """Run one role, N webhook workers, or every role under the supervisor.

    Processor roles serve Prometheus metrics on ``MEDIAFLOW_METRICS_PORT`` when it
    is set (the HTTP roles serve ``/metrics`` on their own port).

    Raises:
        UsageError: ``--workers`` or ``--idle-exit`` given to a role that has none.
        ConfigError: the role (or one of the supervised processes) refused its settings.

    """
    idle_exit = getattr(args, "idle_exit", None)
    if args.workers > 1 and args.role != "webhooks":
        raise UsageError(
            "--workers applies to the webhooks role only (mediaflow serve webhooks --workers N); "
            "other roles scale by running more copies of them"
        )
    if idle_exit is not None and args.role not in PROCESSORS:
        raise UsageError(
            f"--idle-exit applies to the processor roles only ({', '.join(PROCESSORS)}); "
            "the others serve until stopped"
        )
    if args.role == "all":
        return run_all(settings)
    if args.role == "webhooks" and args.workers > 1:
        return webhook_workers(settings, args.workers)
    if args.role in PROCESSORS:
        return run_stage(PROCESSORS[args.role], settings, idle_exit_s=idle_exit)
    return SERVERS[args.role](args, settings)


def webhook_workers(settings: Settings, workers: int) -> int:
    """``serve webhooks --workers N``: N receivers on one port (``SO_REUSEPORT``), supervised.

    Raises:
        ConfigError: the tenant registry or the topics file is invalid (checked
            once, before any worker starts), or a worker refused its settings.

    """
    webhooks.check_config(settings)
    raise_open_files_limit()  # the workers inherit it
    # Every worker counts into one directory, so each one's /metrics shows them all.
    with webhook_metrics.shared_directory():
        return supervise(
            [
                Child(f"webhooks-{n}", mediaflow_command("serve", "webhooks"), reloads=True)
                for n in range(1, workers + 1)
            ],
            noun="worker",
            on_exit=webhook_metrics.worker_exited,
        )


def run_all(settings: Settings) -> int:
    """``run all``: every role as a child process; Ctrl-C or SIGTERM stops them all.

    Raises:
        ConfigError: a role refused its configuration; every role was stopped.

    """
    children = []
    for role in ROLES:
        env = dict(os.environ)
        if role in PROCESSOR_METRICS_PORTS:
            env["MEDIAFLOW_METRICS_PORT"] = str(PROCESSOR_METRICS_PORTS[role])
        children.append(Child(role, mediaflow_command("run", role), env, reloads=role in RELOADING))
    print(
        "mediaflow is running:\n"
        f"  webhooks  http://{settings.webhook_host}:{settings.webhook_port}/webhooks/wapi "
        f"(also /webhooks/evolution, /webhooks/zapi, /healthz, /readyz, /metrics)\n"
        f"  API       http://{settings.api_host}:{settings.api_port}/media  (Bearer token)\n"
        f"  dashboard http://{settings.api_host}:{settings.api_port}/ui/  (log in with the token)\n"
        "  metrics   "
        + ", ".join(f"{r} :{p}/metrics" for r, p in PROCESSOR_METRICS_PORTS.items())
        + "\n"
        f"  Kafka     {settings.kafka.bootstrap_servers}\n"
        f"  S3        {settings.s3.endpoint_url}  bucket {settings.s3.bucket}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        return supervise(children)
    finally:
        print("mediaflow stopped.", flush=True)
