"""A wedged librdkafka call makes the worker give up instead of hanging forever.

Fakes stand in for the clients here: the point is what the loop does when a
call never returns, which a real broker cannot be made to do on demand.
"""

import asyncio
import threading
from datetime import datetime

from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.worker import Worker, WorkerOptions


class FakeMessage:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self):
        return None

    def topic(self):
        return "in"

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def key(self):
        return b"k"

    def value(self):
        return b"v"

    def headers(self):
        return []

    def timestamp(self):
        return (0, 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.pending = [FakeMessage(0)]

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self.on_assign = on_assign

    def consume(self, num_messages, timeout):
        if hasattr(self, "on_assign"):
            self.on_assign(self, [])
            del self.on_assign
        batch, self.pending = self.pending, []
        return batch

    def consumer_group_metadata(self):
        return object()

    def pause(self, partitions):
        pass

    def resume(self, partitions):
        pass

    def close(self):
        pass


class WedgedProducer:
    """Every call works except send_offsets_to_transaction, which never returns by itself."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def init_transactions(self, timeout):
        pass

    def begin_transaction(self):
        pass

    def produce(self, *args, **kwargs):
        pass

    def poll(self, timeout):
        return 0

    def send_offsets_to_transaction(self, offsets, metadata, timeout):
        self.release.wait()

    def commit_transaction(self, timeout):
        pass

    def abort_transaction(self, timeout):
        pass

    def flush(self, timeout):
        return 0


class EchoStage:
    name = "echo"

    async def handle(self, record: InRecord):
        return [OutRecord("out", record.value, record.key)]

    def media_id_of(self, record):
        return None

    def failure_records(self, record, decision, now: datetime):
        return []


def test_a_transaction_call_past_its_deadline_triggers_the_wedged_exit():
    producer = WedgedProducer()
    wedged: list[str] = []

    def on_wedged(call: str) -> None:
        wedged.append(call)
        worker.stop()
        producer.release.set()  # a real process would exit here instead

    worker = Worker(
        consumer=FakeConsumer(),
        producer=producer,
        stage=EchoStage(),
        topics=["in"],
        policy=RetryPolicy(),
        router=FailureRouter(stage="echo", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(batch_max_records=1, call_deadline_s=0.3),
        on_wedged=on_wedged,
    )
    asyncio.run(asyncio.wait_for(worker.run(), timeout=30))
    assert wedged == ["send_offsets_to_transaction"]
