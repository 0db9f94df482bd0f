"""Dismiss: the events of a dismissal are written whole or not at all."""

import pytest
from confluent_kafka import KafkaError, KafkaException

from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.ops import dismiss
from tests.support.dead_letters import (
    CODEC,
    LAYOUT,
    ProducerFailingMidBatch,
    dead_letter,
    request,
)


def dismissals(count: int) -> list:
    views = [dead_letter(CODEC.encode(request(f"m-{i}")), offset=i) for i in range(count)]
    return [dismiss.dismissed_event(v, "ana", "spam") for v in views]


@pytest.mark.parametrize(
    "error",
    [
        KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "timed out")),
        KafkaException(KafkaError(KafkaError._STATE, "bad state", txn_requires_abort=True)),
        RuntimeError("a bug"),
    ],
    ids=["kafka-error", "abortable", "bug"],
)
def test_a_dismiss_that_fails_mid_batch_aborts_its_transaction(error):
    producer = ProducerFailingMidBatch(error)
    settings = Settings()
    with pytest.raises(type(error) if isinstance(error, RuntimeError) else MediaflowError):
        dismiss.execute_dismiss(settings, LAYOUT, CODEC, dismissals(3), producer=producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == [] and "commit_transaction" not in producer.calls
