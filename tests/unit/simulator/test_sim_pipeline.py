"""A simulated run's retry tiers come from its own topics file: the one source of truth."""

import shutil

from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.topics import load_layout
from simulator.pipeline import Run


def test_a_run_declares_its_short_retry_tiers_in_its_topics_file() -> None:
    run = Run.create(
        "unit", wapi_url="http://127.0.0.1:1", cdn_url="http://127.0.0.1:2", retry_delays_s=(1, 3)
    )
    try:
        tiers = load_layout(run.settings.kafka).retry_tiers
        assert [tier.delay_s for tier in tiers] == [1, 3]
        assert RetryPolicy(tiers).max_attempts == 3  # what the downloader's stage is given
        assert run.settings.kafka.topics_file.parent == run.directory
    finally:
        shutil.rmtree(run.directory)
