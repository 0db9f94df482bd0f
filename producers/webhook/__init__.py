"""The webhook receiver: authenticate, validate, put the event durably on Kafka, answer.

Run it with ``mediaflow serve webhooks [--workers N]`` (:func:`server.main`);
embed it with :class:`Endpoints` around a :class:`Receiver`, served by
:func:`build_app`.
"""

from mediaflow.producers.webhook.app import Endpoints, Receiver, build_app
from mediaflow.producers.webhook.auth import TenantSource, authenticate, presented_token
from mediaflow.producers.webhook.envelope import (
    OutgoingRecord,
    build_record,
    record_key,
    traceparent,
)
from mediaflow.producers.webhook.producer import AsyncProducer
from mediaflow.producers.webhook.server import main, serve
from mediaflow.producers.webhook.validation import Rejected

__all__ = [
    "AsyncProducer",
    "Endpoints",
    "OutgoingRecord",
    "Receiver",
    "Rejected",
    "TenantSource",
    "authenticate",
    "build_app",
    "build_record",
    "main",
    "presented_token",
    "record_key",
    "serve",
    "traceparent",
]
