"""``mediaflow media history MEDIA_ID``: one media's events, read from the topics."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from mediaflow.cli._args import json_flag, positive_int
from mediaflow.config import Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import history
from mediaflow.ops._output import table, to_json
from mediaflow.storage.projection import open_store

COLUMNS = ("at", "event", "attempt", "fetch_path", "error_kind", "error", "record")


def register(subparsers: Any) -> None:
    """Add the command to the CLI."""
    parser = subparsers.add_parser("media", help="one media's state and history")
    actions = parser.add_subparsers(dest="action", required=True)
    shown = actions.add_parser(
        "history",
        help="every event, download request and dead letter of a media, from the topics",
    )
    shown.add_argument("media_id")
    shown.add_argument(
        "--limit",
        type=positive_int,
        default=history.MAX_SCANNED,
        metavar="N",
        help=f"records read at most per topic (default {history.MAX_SCANNED})",
    )
    json_flag(shown)
    shown.set_defaults(handler=history_command)


def history_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the history; exit 1 when the projection does not know the media."""
    store = open_store(settings.projection_db_url)
    try:
        row = store.get(args.media_id)
    finally:
        store.close()
    if row is None:
        # The projection gives the times around which the topics are read.
        print(f"mediaflow media history: no media {args.media_id!r} in the projection")
        return 1
    found = history.media_history(settings, load_layout(settings.kafka), row, limit=args.limit)
    if args.json:
        print(to_json(dataclasses.asdict(found)))
        return 0
    rows = [
        {
            **dataclasses.asdict(e),
            "record": f"dead letter {e.dead_letter}"
            if e.dead_letter
            else f"{e.topic}[{e.partition}]@{e.offset}",
        }
        for e in found.entries
    ]
    print(table(rows, COLUMNS) if rows else "no record of this media in the window read")
    if found.capped:
        print(
            f"history truncated after {found.scanned} records (at most {args.limit} read from "
            f"{', '.join(found.capped)}): newer events may be missing",
            file=sys.stderr,
        )
    return 0
