"""Topics and a bucket of its own for each benchmark run, so runs never see each other."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mediaflow.config import Settings
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import apply, delete, load_layout
from mediaflow.logging import configure
from mediaflow.storage.s3 import ensure_bucket, s3_client
from simulator.scratch import drop_bucket


def fresh_settings(settings: Settings) -> Settings:
    """Return ``settings`` with a unique topic prefix and a unique bucket name."""
    kafka = dataclasses.replace(settings.kafka, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    s3 = dataclasses.replace(settings.s3, bucket=f"bench-{uuid.uuid4().hex[:10]}")
    return dataclasses.replace(settings, kafka=kafka, s3=s3)


@contextmanager
def fresh_stack(settings: Settings) -> Iterator[Settings]:
    """Create fresh topics and a bucket, yield their settings, then delete both.

    A run stores gigabytes (``bench_downloader`` alone about 3.5 GB); a bucket
    kept per run filled the disk of a machine that benchmarks often.
    """
    fresh = fresh_settings(settings)
    specs = load_layout(fresh.kafka).specs
    admin = admin_client(fresh.kafka)
    apply(admin, specs)
    client = s3_client(fresh.s3)
    try:
        ensure_bucket(client, fresh.s3)
        yield fresh
    finally:
        delete(admin, [s.name for s in specs])
        drop_bucket(client, fresh.s3.bucket)


def run_alone(
    run: Callable[[Settings, int], dict[str, Any]], argv: list[str], default_n: int, out: Path
) -> int:
    """A bench ``main``: ``run(settings, n)`` on fresh topics, printed and saved to ``out``."""
    n = int(argv[0]) if argv else default_n
    settings = Settings.from_env()
    configure(fmt=settings.log_format, level="warning")
    with fresh_stack(settings) as fresh:
        result = json.dumps(run(fresh, n), indent=2)
    out.parent.mkdir(exist_ok=True)
    out.write_text(result + "\n")
    print(result)
    return 0
