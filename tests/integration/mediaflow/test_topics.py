import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import apply, check, delete, load_layout
from tests.support.processes import run_mediaflow, settings_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def test_apply_creates_every_declared_topic_then_is_a_no_op(make_settings):
    settings = make_settings(create=False)
    admin = admin_client(settings.kafka)
    specs = load_layout(settings.kafka).specs
    try:
        created = apply(admin, specs)
        assert len(created) == len(specs)
        metadata = admin.list_topics(timeout=10)
        for spec in specs:
            assert len(metadata.topics[spec.name].partitions) == spec.partitions
        assert apply(admin, specs) == []
        assert check(admin, specs) == []
    finally:
        delete(admin, [s.name for s in specs])


def test_check_lists_drift_and_apply_repairs_it(settings):
    admin = admin_client(settings.kafka)
    layout = load_layout(settings.kafka)
    events = layout.by_role("media_events")
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        events.name,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(10)

    drift = eventually(lambda: check(admin, layout.specs))
    assert [(d.topic, d.what, d.actual) for d in drift] == [(events.name, "retention.ms", "1000")]

    changes = apply(admin, layout.specs)
    assert changes == [f"{events.name}: retention.ms 1000 -> -1"]
    assert eventually(lambda: check(admin, layout.specs) == []) is True


def test_topics_check_command_exits_non_zero_on_drift(settings):
    admin = admin_client(settings.kafka)
    layout = load_layout(settings.kafka)
    admin.delete_topics([layout.dead_letters])[layout.dead_letters].result(10)
    run = run_mediaflow("topics", "check", env=settings_env(settings), timeout=60)
    assert run.returncode == 1
    assert f"{layout.dead_letters}: existence declared present, actual missing" in run.stdout
