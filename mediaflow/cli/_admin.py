"""``mediaflow config``, ``mediaflow topics`` and ``mediaflow storage``: set-up commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mediaflow.config import Settings
from mediaflow.config_secrets import masked
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import apply, check, load_layout
from mediaflow.storage.s3 import ensure_bucket, s3_client


def register(subparsers: Any) -> None:
    """Add the set-up commands to the CLI."""
    config = subparsers.add_parser("config", help="inspect the effective configuration")
    config_sub = config.add_subparsers(dest="action", required=True)
    config_sub.add_parser("show", help="print settings with secrets masked").set_defaults(
        handler=config_show
    )

    topics = subparsers.add_parser("topics", help="topics as code (deploy/topics.toml)")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    topics_sub.add_parser("apply", help="create or update topics; print changes").set_defaults(
        handler=topics_apply
    )
    topics_sub.add_parser(
        "check", help="exit 1 and list drift if the cluster differs"
    ).set_defaults(handler=topics_check)

    storage = subparsers.add_parser("storage", help="object storage set-up")
    storage_sub = storage.add_subparsers(dest="action", required=True)
    storage_sub.add_parser("init", help="create the bucket (private) if missing").set_defaults(
        handler=storage_init
    )


def config_show(_args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective configuration as JSON, secrets masked."""
    print(json.dumps(masked(settings), indent=2, default=str))
    return 0


def topics_apply(_args: argparse.Namespace, settings: Settings) -> int:
    """Make the cluster match the topics file."""
    layout = load_layout(settings.kafka)
    changes = apply(admin_client(settings.kafka), layout.specs)
    for line in changes:
        print(line)
    print(f"topics: {len(changes)} change(s), {len(layout.specs)} topic(s) declared")
    return 0


def topics_check(_args: argparse.Namespace, settings: Settings) -> int:
    """Exit non-zero and list drift when the cluster differs from the file."""
    layout = load_layout(settings.kafka)
    drift = check(admin_client(settings.kafka), layout.specs)
    for item in drift:
        print(f"drift: {item}")
    if drift:
        print("run `mediaflow topics apply` to fix what can be fixed")
        return 1
    print(f"topics: no drift ({len(layout.specs)} topic(s))")
    return 0


def storage_init(_args: argparse.Namespace, settings: Settings) -> int:
    """Create the bucket if it does not exist."""
    created = ensure_bucket(s3_client(settings.s3), settings.s3)
    print(f"bucket {settings.s3.bucket}: {'created' if created else 'already exists'} (private)")
    return 0
