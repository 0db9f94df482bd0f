"""A second copy of a transactional stage with the same instance name fences the first,
which exits with the fatal-Kafka code and a log line saying why and what to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaflow.config import Settings
from mediaflow.kafka.stage_runner import EXIT_KAFKA_FATAL
from mediaflow.kafka.topics import load_layout
from tests.support.detector import as_record, envelope, image_body, wait_until_some_committed
from tests.support.downloader import tenants_file
from tests.support.kafka import produce
from tests.support.processes import spawn_role, stop
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def log_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def assigned(path: Path) -> bool:
    return any(e.get("event") == "partitions_assigned" for e in log_events(path))


@pytest.mark.parametrize("role", ["detector", "downloader"])
def test_a_second_copy_with_the_same_instance_name_fences_the_first_which_says_so(
    make_settings: Callable[..., Settings], tmp_path: Path, role: str
) -> None:
    settings = make_settings(
        instance_name=f"{role}-twin", tenants_file=tenants_file(tmp_path), log_level="info"
    )
    layout = load_layout(settings.kafka)
    zombie_log = tmp_path / "zombie.log"
    with zombie_log.open("wb") as sink:
        zombie = spawn_role(role, settings, log=sink)
    try:
        if role == "detector":
            produce(settings, layout.webhooks, [as_record(envelope(image_body("3EB0" + "A" * 16)))])
            wait_until_some_committed(settings, layout.media_events)
        else:
            assert eventually(lambda: assigned(zombie_log), timeout=60)
        successor = spawn_role(role, settings, "--idle-exit", "2")
        try:
            assert successor.wait(timeout=120) == 0
        finally:
            stop(successor)
        assert zombie.wait(timeout=60) == EXIT_KAFKA_FATAL
    finally:
        stop(zombie)
    [line] = [e for e in log_events(zombie_log) if e.get("event") == "stage_stopped_fatal"]
    assert line["stage"] == role
    assert line["fenced"] is True
    assert line["instance_id"].endswith(f"mediaflow-{role}-{role}-twin")
    assert "same MEDIAFLOW_INSTANCE_NAME took over" in line["hint"]
    assert "Traceback" not in zombie_log.read_text()
