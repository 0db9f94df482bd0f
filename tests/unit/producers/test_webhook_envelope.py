import os
import uuid
from datetime import UTC, datetime

from mediaflow.config import Secret
from mediaflow.events import Provider
from mediaflow.producers.webhook.envelope import (
    OutgoingRecord,
    build_record,
    record_key,
    select_headers,
    traceparent,
)
from mediaflow.providers import EnvelopeFields
from mediaflow.tenants import Tenant

TENANT = Tenant("I1", "2", "wapi", Secret("s3cret-value"), Secret(""))
FIELDS = EnvelopeFields(
    instance_id="I1", event_type="webhookReceived", message_id="M1", chat_id="C1"
)
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_kept() -> None:
    assert traceparent(VALID) == VALID


def test_a_missing_or_invalid_traceparent_is_replaced_by_a_new_one() -> None:
    for incoming in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        generated = traceparent(incoming)
        assert generated != incoming
        assert traceparent(generated) == generated


def test_only_allow_listed_headers_are_kept() -> None:
    kept = select_headers(
        [
            ("User-Agent", "W-API"),
            ("Authorization", "Bearer x"),
            ("X-Webhook-Token", "t"),
            ("apikey", "k"),
            ("Cookie", "c"),
            ("X-Request-Id", "r"),
        ]
    )
    assert kept == {"user-agent": "W-API", "x-request-id": "r"}


def test_kept_header_values_are_utf8_whatever_bytes_came() -> None:
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates.
    kept = select_headers([("User-Agent", "W-API \udcff\udcfe"), ("X-Real-IP", "\udcc3")])
    assert kept == {"user-agent": "W-API \ufffd\ufffd", "x-real-ip": "\ufffd"}
    assert [value.encode() for value in kept.values()]  # encodable, as Avro needs


def test_the_key_is_instance_and_chat() -> None:
    assert record_key(FIELDS) == b"I1|C1"


def test_an_event_without_chat_keys_on_the_instance() -> None:
    assert record_key(EnvelopeFields(instance_id="I1", event_type="webhookStatus")) == b"I1|"


def test_record_carries_tenant_client_body_and_matching_headers() -> None:
    record = build_record(
        provider=Provider.WAPI,
        tenant=TENANT,
        fields=FIELDS,
        body=b'{"raw": true}',
        request_headers=[("traceparent", VALID)],
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        fingerprint=b"\x01" * 8,
    )
    headers = dict(record.headers)
    assert (record.event.client_id, record.event.body) == ("2", b'{"raw": true}')
    assert headers["mediaflow.event-id"] == record.event.event_id.encode()
    assert headers["mediaflow.schema-fingerprint"] == b"01" * 8
    assert headers["traceparent"] == VALID.encode()


def record_for(body: bytes) -> OutgoingRecord:
    return build_record(
        provider=Provider.WAPI,
        tenant=TENANT,
        fields=FIELDS,
        body=body,
        request_headers=[],
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        fingerprint=b"\x01" * 8,
    )


def test_each_record_gets_its_own_version_4_event_id_and_trace() -> None:
    first, second = record_for(b"{}"), record_for(b"{}")
    assert uuid.UUID(first.event.event_id).version == 4
    assert first.event.event_id != second.event.event_id
    assert dict(first.headers)["traceparent"] != dict(second.headers)["traceparent"]


def test_a_forked_receiver_does_not_repeat_its_parents_event_ids() -> None:
    record_for(b"{}")  # the parent has made ids before it forks
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write_end, record_for(b"{}").event.event_id.encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read_end, 36).decode() != record_for(b"{}").event.event_id
