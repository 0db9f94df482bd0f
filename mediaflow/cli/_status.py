"""``mediaflow status [--watch]``: lag, throughput, dead letters, freshness."""

import argparse
import time
from typing import Any

from mediaflow.cli._args import json_flag
from mediaflow.config import Settings
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import status
from mediaflow.ops._output import CLEAR_HOME, table, to_json
from mediaflow.storage.s3 import s3_client


def register(subparsers: Any) -> None:
    """Add the command to the CLI."""
    parser = subparsers.add_parser(
        "status", help="lag, throughput, dead letters, in-flight age, reachability"
    )
    parser.add_argument("--watch", action="store_true", help="refresh in place like top (Ctrl-C)")
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between the two samples that give throughput (0: no throughput)",
    )
    json_flag(parser)
    parser.set_defaults(handler=status_command)


GROUP_COLUMNS = ("group", "topic", "partition", "committed", "end", "lag", "rate")
STAGE_COLUMNS = ("group", "rate", "in_flight", "oldest_in_flight")


def status_text(data: dict[str, Any]) -> str:
    """The status screen as text."""
    lines = [
        f"mediaflow status  {data['at']:%Y-%m-%d %H:%M:%S}Z  broker {data['broker']}  "
        f"s3 {data['s3']}"
    ]
    newest = data["newest_dead_letter"]
    tail = (
        f" (newest {newest['id']} {newest['stage']}/{newest['kind']}: {newest['message']})"
        if newest
        else ""
    )
    lines.append(f"replication: {data['replication']}")
    lines.append(f"dead letters: {data['dead_letters']}{tail}")
    projection = data["projection"]
    if "error" in projection:
        lines.append(f"projection: unavailable ({projection['error']})")
    else:
        age = projection["oldest_in_flight_age_s"]
        lines.append(
            f"projection: {projection['media']} media {projection['by_status']}; oldest in flight "
            f"{'-' if age is None else f'{age} s'}; {projection['events_not_applied']} event(s) "
            "not applied yet"
        )
    groups = data["groups"]
    if not groups:
        return "\n".join([*lines, "", "no consumer group has committed yet"])
    stages = [{**s, "oldest_in_flight": _age(s["oldest_in_flight_age_s"])} for s in data["stages"]]
    lines += ["", table(stages, STAGE_COLUMNS), "", table(groups, GROUP_COLUMNS)]
    return "\n".join(lines)


def _age(seconds: int | None) -> str:
    return "-" if seconds is None else f"{seconds} s"


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the status once (or keep redrawing it); exit 1 when broker or S3 is unreachable."""
    layout = load_layout(settings.kafka)
    admin = admin_client(settings.kafka)
    s3 = s3_client(settings.s3)
    interval = max(args.interval, 1.0) if args.watch else args.interval
    previous: status.Sample | None = status.take_sample(admin, settings, layout)
    while True:
        if interval > 0:
            time.sleep(interval)
            current = status.take_sample(admin, settings, layout)
        else:
            current, previous = previous, None
        state = status.health(settings, layout, s3, admin)
        rows = status.lag_rows(current, previous)
        stages = status.stage_rows(rows, current.first_pending, time.time() * 1000)
        data = status.render(rows, state, stages)
        text = to_json(data) if args.json else status_text(data)
        print((CLEAR_HOME if args.watch else "") + text, flush=True)
        if not args.watch:
            return 0 if (state.broker, state.s3) == ("ok", "ok") else 1
        previous = current
