"""The ``mediaflow`` command: one entry point, a subcommand per role and tool.

Each subcommand module exposes ``register(subparsers)`` and sets
``handler(args, settings) -> int`` as its default. Settings are read from the
environment once, here, and passed down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mediaflow import __version__
from mediaflow import logging as mflog
from mediaflow.cli import (
    _admin,
    _diagnose,
    _dlq,
    _media,
    _projection,
    _replay,
    _reprocess,
    _roles,
    _status,
)
from mediaflow.config import Settings
from mediaflow.config_secrets import secret_values
from mediaflow.errors import EXIT_CONFIG, ConfigError, MediaflowError

COMMAND_MODULES = [
    _admin,
    _roles,
    _dlq,
    _replay,
    _reprocess,
    _status,
    _diagnose,
    _projection,
    _media,
]


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser (also used by the tests and the docs)."""
    parser = argparse.ArgumentParser(
        prog="mediaflow",
        description="Never lose a WhatsApp media file: webhooks -> Kafka -> S3, verified.",
    )
    parser.add_argument("--version", action="version", version=f"mediaflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"mediaflow: configuration error: {mflog.scrub(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    mflog.configure(fmt=settings.log_format, level=settings.log_level)
    mflog.register_secrets(secret_values(settings))
    try:
        return int(args.handler(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except MediaflowError as exc:
        print(f"mediaflow {args.command}: {mflog.scrub(exc.message)}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1


__all__ = ["build_parser", "main"]
