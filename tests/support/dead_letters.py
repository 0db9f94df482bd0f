"""Dead letters as the operator commands read them, and a producer that fails mid-batch."""

from __future__ import annotations

from datetime import UTC, datetime

from mediaflow.codec import AvroCodec
from mediaflow.config import KafkaSettings
from mediaflow.errors import ErrorKind, MediaExpired
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource, MediaType
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import load_layout
from mediaflow.ops.dlq import DeadLetterView, decode_dead_letter
from tests.support.fake_kafka import FakeProducer

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
CODEC = AvroCodec()
LAYOUT = load_layout(KafkaSettings())


def request(media_id="m-1", client="2", media_type=MediaType.IMAGE) -> MediaDownloadRequested:
    info = MediaInfo(
        provider="wapi",
        client_id=client,
        instance_id="inst-1",
        message_id="msg",
        chat_id="chat",
        media_type=media_type,
    )
    return MediaDownloadRequested(
        event_id="e",
        media_id=media_id,
        occurred_at=NOW,
        stage="detector",
        source_event_id="w",
        info=info,
        source=MediaSource(media_key="c2VjcmV0", url="https://x/y?sig=1"),
    )


def dead_letter(
    value: bytes | None, *, kind=ErrorKind.EXPIRED, offset=0, extra=(), at=NOW
) -> DeadLetterView:
    record = InRecord(
        topic=LAYOUT.download_requests,
        partition=1,
        offset=40,
        key=b"m-1",
        value=value,
        headers=list(extra),
        timestamp=at,
    )
    router = FailureRouter("downloader", "mediaflow-downloader", LAYOUT.dead_letters)
    out = router.route(record, DeadLetter(kind, "gone", 1, MediaExpired("gone")), at, "m-1")
    return decode_dead_letter(
        CODEC,
        partition=0,
        offset=offset,
        timestamp_ms=h.millis(at),
        key=b"m-1",
        value=out.value,
        headers=out.headers,
    )


class ProducerFailingMidBatch(FakeProducer):
    """Accepts the first record of a batch and refuses the second with ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.produced_in_batch = 0

    def begin_transaction(self):
        super().begin_transaction()
        self.produced_in_batch = 0

    def produce(self, *args, **kwargs):
        self.produced_in_batch += 1
        if self.produced_in_batch == 2:
            raise self.error
        super().produce(*args, **kwargs)
