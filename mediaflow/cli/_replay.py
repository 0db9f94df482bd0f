"""``mediaflow replay``: move a consumer group's offsets back to reprocess a range."""

import argparse
import sys
from typing import Any

from mediaflow.cli._args import json_flag, time_arg
from mediaflow.config import Settings
from mediaflow.errors import UsageError
from mediaflow.kafka.clients import admin_client
from mediaflow.ops import replay, replay_range
from mediaflow.ops._output import table, to_json
from mediaflow.progress import Progress


def register(subparsers: Any) -> None:
    """Add the command to the CLI."""
    parser = subparsers.add_parser(
        "replay", help="move a consumer group's offsets so a stage reprocesses records"
    )
    parser.add_argument("--group", help="consumer group id (whose offsets move; not with --until*)")
    parser.add_argument(
        "--topic", required=True, help="topic (full name, or logical name without the prefix)"
    )
    parser.add_argument("--partition", type=int, default=None, help="only this partition")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--from-timestamp",
        type=time_arg,
        metavar="TIME",
        help="first record at or after TIME (ISO-8601 or epoch ms)",
    )
    where.add_argument("--from-offset", type=int, metavar="N", help="offset N in each partition")
    where.add_argument("--to-earliest", action="store_true", help="the oldest retained record")
    until = parser.add_mutually_exclusive_group()
    until.add_argument(
        "--until",
        type=time_arg,
        metavar="TIME",
        help="bounded replay: copy the records before TIME back onto the topic (see docs)",
    )
    until.add_argument(
        "--until-offset",
        type=int,
        metavar="N",
        help="bounded replay: copy the records before offset N back onto the topic",
    )
    parser.add_argument("--force", action="store_true", help="even if the group has active members")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    json_flag(parser)
    parser.set_defaults(handler=replay_command)


def confirm(question: str, *, assume_yes: bool, stdin: Any = None) -> bool:
    """Ask ``question`` on stdin; without a terminal, only ``--yes`` says yes.

    Raises:
        UsageError: no terminal to ask and no ``--yes``.
    """
    if assume_yes:
        return True
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise UsageError("not a terminal: pass --yes to confirm (or --dry-run to look first)")
    print(f"{question} [y/N] ", end="", flush=True)
    return stdin.readline().strip().lower() in ("y", "yes")


def _topic_name(settings: Settings, name: str) -> str:
    prefix = settings.kafka.topic_prefix
    return name if not prefix or name.startswith(prefix) else settings.kafka.topic(name)


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the replay plan, confirm, and move the offsets (or copy a bounded range)."""
    target = replay.ReplayTarget(
        from_timestamp=args.from_timestamp,
        from_offset=args.from_offset,
        to_earliest=args.to_earliest,
    )
    topic = _topic_name(settings, args.topic)
    if args.until is not None or args.until_offset is not None:
        if args.group:
            raise UsageError("--until* copies a range for every group: drop --group")
        end = replay.ReplayTarget(from_timestamp=args.until, from_offset=args.until_offset)
        return _bounded(args, settings, topic, target, end)
    if not args.group:
        raise UsageError("--group is required (or bound the replay with --until/--until-offset)")
    admin = admin_client(settings.kafka)
    members = replay.active_members(admin, args.group)
    plans = replay.compute_plan(settings.kafka, admin, args.group, topic, target, args.partition)
    rows = [p.row() for p in plans]
    total = sum(p.to_reprocess for p in plans)
    if not args.json:
        print(f"replay plan for group {args.group} on {topic}:")
        print(table(rows, ("partition", "current", "new", "low", "high", "to_reprocess")))
        print(f"{total} record(s) to reprocess")
    if members and not args.force:
        print(
            f"group {args.group} has {len(members)} active member(s): {', '.join(members)}; "
            "stop them first (or --force)",
            file=sys.stderr,
        )
        return 1
    moved = 0
    if not args.dry_run and confirm(f"move offsets of {args.group}?", assume_yes=args.yes):
        moved = replay.apply_plan(admin, args.group, plans)
        if not args.json:
            print(f"moved {moved} partition(s)")
    if args.json:
        print(
            to_json(
                {
                    "group": args.group,
                    "topic": topic,
                    "dry_run": args.dry_run,
                    "partitions": rows,
                    "to_reprocess": total,
                    "moved": moved,
                }
            )
        )
    return 0


def _bounded(
    args: argparse.Namespace,
    settings: Settings,
    topic: str,
    start: replay.ReplayTarget,
    end: replay.ReplayTarget,
) -> int:
    """Copy the records of ``[start, end)`` back onto ``topic`` (groups keep their place)."""
    plans = replay_range.compute_range(settings.kafka, topic, start, end, args.partition)
    rows = [p.row() for p in plans]
    total = sum(p.count for p in plans)
    if not args.json:
        print(f"bounded replay of {topic} (records copied back onto the topic):")
        print(table(rows, ("partition", "from", "until")))
        print(f"at most {total} record(s) to copy")
    if not total:
        raise UsageError("the range holds no offsets: check --from-* and --until*")
    copied = 0
    if not args.dry_run and confirm(f"copy them onto {topic}?", assume_yes=args.yes):
        progress = Progress("copied", total=total)
        copied = replay_range.copy_range(settings.kafka, topic, plans, progress=progress)
        if not args.json:
            print(f"copied {copied} record(s)")
    if args.json:
        print(
            to_json(
                {
                    "topic": topic,
                    "dry_run": args.dry_run,
                    "partitions": rows,
                    "copied": copied,
                }
            )
        )
    return 0
