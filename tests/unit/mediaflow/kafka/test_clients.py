"""A Kafka property librdkafka refuses is a configuration error that names it, not a traceback."""

from __future__ import annotations

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
