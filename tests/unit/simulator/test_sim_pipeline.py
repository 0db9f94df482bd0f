"""A simulated run's retry tiers come from its own topics file: the one source of truth."""

import os
import shutil
import subprocess
import sys
import time

from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.topics import load_layout
from simulator.pipeline import Pipeline, Run, copies, process_tree_cpu_s


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


def test_copies_name_each_extra_copy_of_a_stage() -> None:
    roles = copies(("webhooks", "detector", "downloader"), {"detector": 2, "downloader": 2})
    assert roles == ("webhooks", "detector", "detector@2", "downloader", "downloader@2")


def test_the_cpu_of_a_process_tree_includes_its_living_children() -> None:
    burn = "import time; sum(range(20_000_000)); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 30
        while process_tree_cpu_s(child.pid) < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        child_cpu = process_tree_cpu_s(child.pid)
        assert child_cpu >= 0.2
        # Clock ticks are 10 ms: allow one each for this process and the child.
        assert process_tree_cpu_s(os.getpid()) >= time.process_time() + child_cpu - 0.02
    finally:
        child.kill()
        child.wait()
