"""``mediaflow diagnose``: a checklist of everything the pipeline needs."""

import argparse
from typing import Any

from mediaflow.cli._args import json_flag
from mediaflow.config import Settings
from mediaflow.ops import diagnose
from mediaflow.ops._output import to_json


def register(subparsers: Any) -> None:
    """Add the command to the CLI."""
    parser = subparsers.add_parser(
        "diagnose",
        help="check broker, topics, bucket, projection, tokens, webhook; hint per failure",
    )
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="per network check")
    json_flag(parser)
    parser.set_defaults(handler=diagnose_command)


def diagnose_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the checklist; exit 1 if any check failed."""
    checks = diagnose.run_checks(settings, timeout=args.timeout)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(to_json({"ok": not failed, "checks": checks}))
    else:
        for item in checks:
            print(item.line())
        print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0
