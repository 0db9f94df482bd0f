"""``mediaflow projection ...``: maintenance of the read side."""

from __future__ import annotations

from typing import Any

from mediaflow.cli._args import positive_int
from mediaflow.processors.projection import rebuild


def register(subparsers: Any) -> None:
    """Add ``projection rebuild`` to the CLI."""
    projection = subparsers.add_parser("projection", help="the media state projection")
    actions = projection.add_subparsers(dest="action", required=True)
    rebuild_parser = actions.add_parser(
        "rebuild",
        help="replay the whole media event log into a fresh store and swap it in atomically",
    )
    rebuild_parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes sharing the partitions (default: one per CPU, fewer for a short log)",
    )
    rebuild_parser.set_defaults(handler=rebuild.main)
