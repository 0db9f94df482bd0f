"""Client configuration: user properties tune, stages and guarantees win, refusals are clear."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from mediaflow.config import KafkaSettings
from mediaflow.errors import ConfigError
from mediaflow.kafka import clients

BUILDERS: dict[str, Callable[[KafkaSettings], Any]] = {
    "producer": clients.producer,
    "consumer": lambda settings: clients.consumer(settings, "group"),
    "admin": clients.admin_client,
}


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_an_unknown_property_is_a_config_error_naming_it(
    builder: Callable[[KafkaSettings], Any],
) -> None:
    with pytest.raises(ConfigError, match=r'No such configuration property: "sasl\.mechanismz"'):
        builder(KafkaSettings(properties={"sasl.mechanismz": "PLAIN"}))


def test_a_value_out_of_range_is_a_config_error_naming_property_and_range() -> None:
    with pytest.raises(ConfigError, match=r"value -1 is outside allowed range 0\.\.900000"):
        clients.producer(KafkaSettings(), **{"linger.ms": -1})


def producer_config(properties: dict[str, str], **stage: Any) -> dict[str, Any]:
    return clients.client_config(
        KafkaSettings(properties=properties),
        defaults=clients.PRODUCER_DEFAULTS,
        guarantees=clients.PRODUCER_GUARANTEES,
        stage=stage,
    )


def test_a_user_property_replaces_mediaflow_tuning() -> None:
    config = producer_config({"compression.type": "lz4", "batch.size": "65536"})
    assert (config["compression.type"], config["batch.size"]) == ("lz4", "65536")
    assert config["linger.ms"] == clients.PRODUCER_DEFAULTS["linger.ms"]


def test_a_stage_setting_wins_over_a_user_property_and_the_log_says_so(
    log_lines: io.StringIO,
) -> None:
    config = producer_config({"linger.ms": "50", "client.rack": "eu-1a"}, **{"linger.ms": 0})
    assert (config["linger.ms"], config["client.rack"]) == (0, "eu-1a")
    (line,) = [json.loads(text) for text in log_lines.getvalue().splitlines()]
    assert (line["event"], line["variable"]) == (
        "kafka_property_replaced",
        "MEDIAFLOW_KAFKA_PROP_LINGER_MS",
    )


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"acks": "1"}, "MEDIAFLOW_KAFKA_PROP_ACKS=1 is refused: mediaflow sets acks=all"),
        (
            {"request.required.acks": "0"},
            "MEDIAFLOW_KAFKA_PROP_REQUEST_REQUIRED_ACKS=0 is refused: mediaflow sets acks=all",
        ),
        (
            {"enable.idempotence": "false"},
            "MEDIAFLOW_KAFKA_PROP_ENABLE_IDEMPOTENCE=false is refused",
        ),
    ],
)
def test_a_property_weakening_a_producer_guarantee_is_refused(
    properties: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        clients.producer(KafkaSettings(properties=properties))


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (
            {"isolation.level": "read_uncommitted"},
            "MEDIAFLOW_KAFKA_PROP_ISOLATION_LEVEL=read_uncommitted is refused",
        ),
        ({"auto.offset.reset": "latest"}, "must start at the oldest record"),
        ({"enable.auto.commit": "true"}, "committed only after its work is durable"),
    ],
)
def test_a_property_weakening_a_consumer_guarantee_is_refused(
    properties: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        clients.consumer(KafkaSettings(properties=properties), "group")


def test_a_guarantee_spelled_another_way_is_accepted() -> None:
    config = producer_config({"acks": "-1", "enable.idempotence": "TRUE"})
    assert (config["acks"], config["enable.idempotence"]) == ("all", True)
