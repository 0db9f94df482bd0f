"""A simulated run's retry tiers come from its own topics file: the one source of truth."""

import shutil

from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.topics import load_layout
from simulator.pipeline import Pipeline, Run


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


def test_a_second_copy_of_a_role_runs_the_same_stage_under_its_own_instance_name() -> None:
    run = Run.create("unit", wapi_url="http://127.0.0.1:1", cdn_url="http://127.0.0.1:2")
    try:
        pipeline = Pipeline(run, ("downloader", "downloader@2"))
        first, first_env = pipeline.command("downloader")
        second, second_env = pipeline.command("downloader@2", {"MEDIAFLOW_LOG_LEVEL": "debug"})
        assert first[-2:] == second[-2:] == ["run", "downloader"]
        assert first_env["MEDIAFLOW_INSTANCE_NAME"] == run.run_id
        assert second_env["MEDIAFLOW_INSTANCE_NAME"] == f"{run.run_id}-2"
        assert second_env["MEDIAFLOW_LOG_LEVEL"] == "debug"
        assert pipeline.log_path("downloader@2") != pipeline.log_path("downloader")
    finally:
        shutil.rmtree(run.directory)
