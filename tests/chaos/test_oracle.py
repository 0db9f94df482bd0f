"""The independent oracle fails deliberately broken pipelines, and passes a right one (pure).

A small model of the pipeline's outputs (:func:`outputs_of`) turns the
simulator's webhooks into what a right pipeline leaves behind: one object per
media under its key, detections and stores in the event log, one dead letter
per broken or fan-out webhook. Each broken variant changes one thing a real
regression would change; the oracle must name it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.events import MediaDetected, MediaInfo, MediaStored, MediaType, WebhookReceived
from simulator import ledger
from simulator.media import MediaLibrary
from simulator.webhooks import DEMO_INSTANCES, WRAPPERS, Webhook, WebhookFactory
from tests.chaos.oracle import (
    STORE,
    AvroReader,
    DeadLetter,
    Detected,
    LedgerMedia,
    Outputs,
    StoredEvent,
    audit,
    read_ledger,
    render,
)

CLIENTS = {
    DEMO_INSTANCES["wapi"]: "2",
    DEMO_INSTANCES["evolution"]: "3",
    DEMO_INSTANCES["zapi"]: "4",
}
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def batch() -> list[Webhook]:
    """Every kind: plain, every wrapper, Evolution, Z-API, broken, fan-out, redelivery."""
    factory = WebhookFactory(
        MediaLibrary(3, max_size=4_000), cdn_url="http://cdn", files_url="http://wapi", seed=3
    )
    hooks = [factory.wapi_media(factory._new_media()) for _ in range(3)]
    for wrapper, types in sorted(WRAPPERS.items()):
        kind = sorted(types)[0]
        variant = "ptt" if kind is MediaType.AUDIO else None
        hooks.append(factory.wapi_media(factory.library.make(kind, variant), wrapper=wrapper))
    hooks += [
        factory.evolution_media(factory._new_media()),
        factory.zapi_media(factory._new_media()),
        factory.broken_media(factory._new_media()),
        factory.wapi_fanout(3),
        factory.wapi_text(),
    ]
    hooks.append(factory.redelivery(hooks[0]))
    return hooks


def media_id(hook: Webhook, index: int) -> str:
    return f"{hook.message_id}-{index}"


def outputs_of(
    hooks: list[Webhook],
    *,
    drop_wrapper: str | None = None,
    dead_letter_first_5xx: bool = False,
    wrong_bytes: bool = False,
) -> Outputs:
    """What a pipeline leaves behind for ``hooks``: right, or broken one way."""
    objects: dict[str, str] = {}
    detected: list[Detected] = []
    stored: list[StoredEvent] = []
    letters: list[DeadLetter] = []
    seen: set[str | None] = set()
    for hook in hooks:
        if hook.message_id in seen or not hook.media:
            continue
        seen.add(hook.message_id)
        message = (hook.provider, hook.instance_id, hook.message_id or "")
        if hook.fate != STORE:
            letters.append(DeadLetter(hook.fate, message))
            continue
        if drop_wrapper and f'"{drop_wrapper}"' in hook.body.decode():
            continue  # the detector does not see media inside this wrapper
        for index, media in enumerate(hook.media):
            detected.append(Detected(media_id(hook, index), message))
            if dead_letter_first_5xx and hook.provider == "evolution":
                letters.append(DeadLetter("server_error", None, media_id(hook, index)))
                continue
            sha = media.sha256_hex
            if wrong_bytes and hook.provider == "zapi":
                sha = hashlib.sha256(b"the encrypted bytes, stored as they came").hexdigest()
            key = (
                f"cliente_{CLIENTS[hook.instance_id]}/instance_{hook.instance_id}/"
                f"{media.media_type.value}/{hook.day}/{hook.message_id}-{media.sha256_hex[:12]}.bin"
            )
            objects[key] = sha
            stored.append(StoredEvent(media_id(hook, index), key, sha))
    return Outputs(objects, (), detected, stored, letters)


@pytest.fixture(scope="module")
def hooks() -> list[Webhook]:
    return batch()


def ledger_of(hooks: list[Webhook], path: Path, refused: str | None = None) -> list[LedgerMedia]:
    """The simulator's ledger of ``hooks``, through its file, as the oracle reads it."""
    accepted = {h.message_id: h.message_id != refused for h in hooks}
    ledger.write(path, ledger.build(hooks, CLIENTS, accepted))
    return read_ledger(path)


@pytest.fixture(scope="module")
def entries(hooks: list[Webhook], tmp_path_factory: pytest.TempPathFactory) -> list[LedgerMedia]:
    return ledger_of(hooks, tmp_path_factory.mktemp("ledger") / "ledger.jsonl")


def test_the_ledger_holds_each_media_once_with_its_fate_by_construction(
    entries: list[LedgerMedia],
) -> None:
    fates = sorted(e.fate for e in entries)
    # 3 plain + 5 wrapped + Evolution + Z-API to store; the broken one; the fan-out's 3.
    assert fates == ["invalid_payload"] + ["store"] * 10 + ["too_many_media"] * 3


def test_a_right_pipeline_passes(hooks: list[Webhook], entries: list[LedgerMedia]) -> None:
    verdict = audit(entries, outputs_of(hooks))
    assert verdict.ok, render(verdict)
    assert verdict.stored == 10
    assert verdict.dead_as_meant == {"invalid_payload": 1, "too_many_media": 3}


def test_a_detector_that_drops_one_wrapper_type_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    verdict = audit(entries, outputs_of(hooks, drop_wrapper="viewOnceMessageV2"))
    assert not verdict.ok
    assert verdict.count("lost") >= 1
    assert all("no object holds its bytes" in line for line in verdict.problems["lost"])


def test_a_downloader_that_dead_letters_on_the_first_5xx_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    verdict = audit(entries, outputs_of(hooks, dead_letter_first_5xx=True))
    assert not verdict.ok
    assert verdict.count("wrong_dead_letter") == 1
    assert "server_error" in verdict.problems["wrong_dead_letter"][0]


def test_a_downloader_that_stores_the_wrong_bytes_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    verdict = audit(entries, outputs_of(hooks, wrong_bytes=True))
    assert not verdict.ok
    # Its own event agrees with the wrong object: only the ledger's hash tells.
    assert verdict.count("lost") == 1 and verdict.count("unexpected_object") == 1


def test_retries_exhausted_on_a_media_meant_to_be_stored_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    first = right.detected[0]
    letters = [*right.dead_letters, DeadLetter("retries_exhausted", None, first.media_id)]
    verdict = audit(entries, Outputs(right.objects, (), right.detected, right.stored, letters))
    assert verdict.count("wrong_dead_letter") == 1


def test_a_broken_media_dead_lettered_with_another_kind_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    letters = [
        DeadLetter("unexpected", d.message) if d.kind == "invalid_payload" else d
        for d in right.dead_letters
    ]
    verdict = audit(entries, Outputs(right.objects, (), right.detected, right.stored, letters))
    assert [line.split(": ", 1)[1] for line in verdict.problems["wrong_dead_letter"]] == [
        "dead-lettered ['unexpected'], meant invalid_payload"
    ]


def test_a_media_stored_twice_under_two_keys_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    key, sha = next(iter(right.objects.items()))
    objects = {**right.objects, key.replace("/2026/", "/2027/").replace("/2024/", "/2025/"): sha}
    verdict = audit(entries, Outputs(objects, (), right.detected, right.stored, right.dead_letters))
    assert verdict.count("duplicated") == 1


def test_a_media_under_another_clients_key_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    objects = {k.replace("cliente_4/", "cliente_2/"): s for k, s in right.objects.items()}
    stored = [
        StoredEvent(e.media_id, e.key.replace("cliente_4/", "cliente_2/"), e.sha256)
        for e in right.stored
    ]
    verdict = audit(entries, Outputs(objects, (), right.detected, stored, right.dead_letters))
    assert verdict.count("wrong_key") == 1


def test_objects_media_and_uploads_outside_the_ledger_fail(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    stranger = ("wapi", DEMO_INSTANCES["wapi"], "3EB0NOTSENT")
    verdict = audit(
        entries,
        Outputs(
            {**right.objects, "cliente_2/x.bin": hashlib.sha256(b"x").hexdigest()},
            ("cliente_2/big.mp4 (upload 0123)",),
            [*right.detected, Detected("stranger", stranger)],
            right.stored,
            [*right.dead_letters, DeadLetter("expired", stranger)],
        ),
    )
    assert verdict.count("unexpected_object") == 1
    assert verdict.count("unexpected_media") == 1
    assert verdict.count("unexpected_dead_letter") == 1
    assert verdict.count("open_upload") == 1


def test_a_fanout_whose_media_were_detected_fails(
    hooks: list[Webhook], entries: list[LedgerMedia]
) -> None:
    right = outputs_of(hooks)
    fanout = next(h for h in hooks if h.kind == "fanout")
    message = (fanout.provider, fanout.instance_id, fanout.message_id or "")
    detected = [*right.detected, Detected("fan-0", message)]
    verdict = audit(entries, Outputs(right.objects, (), detected, right.stored, right.dead_letters))
    assert verdict.count("unexpected_media") == 3  # each of its media


def test_an_unacknowledged_webhook_may_be_stored_or_absent(
    hooks: list[Webhook], tmp_path: Path
) -> None:
    refused = hooks[1].message_id
    entries = ledger_of(hooks, tmp_path / "ledger.jsonl", refused)
    assert [e.accepted for e in entries].count(False) == 1
    right = outputs_of(hooks)
    assert audit(entries, right).ok
    absent = {k: s for k, s in right.objects.items() if refused not in k}
    assert audit(entries, Outputs(absent, (), right.detected, right.stored, right.dead_letters)).ok


def test_the_decoder_reads_what_the_pipeline_writes_from_the_avsc_files_alone() -> None:
    codec, reader = AvroCodec(), AvroReader()
    info = MediaInfo(
        provider="wapi",
        client_id="2",
        instance_id="i",
        message_id="3EB0AA",
        chat_id="c",
        media_type=MediaType.IMAGE,
        mimetype="image/jpeg",
    )
    detected = MediaDetected(
        event_id="e",
        media_id="m",
        occurred_at=NOW,
        stage="detector",
        source_event_id="s",
        info=info,
    )
    name, fields = reader.decode(codec.encode(detected)) or ("", {})
    assert name == "MediaDetected" and fields["info"]["message_id"] == "3EB0AA"
    stored = MediaStored(
        event_id="e2",
        media_id="m",
        occurred_at=NOW,
        stage="downloader",
        bucket="b",
        key="k",
        size=1,
        sha256="ab",
        content_type="image/jpeg",
        fetch_path="direct",
        duration_ms=1,
        attempt=1,
    )
    name, fields = reader.decode(codec.encode(stored)) or ("", {})
    assert name == "MediaStored" and (fields["key"], fields["sha256"]) == ("k", "ab")
    webhook = WebhookReceived(
        event_id="w",
        provider="wapi",
        client_id="2",
        instance_id="i",
        message_id="3EB0AB",
        event_type="webhookReceived",
        received_at=NOW,
        headers={},
        body=b"{}",
    )
    assert (reader.decode(codec.encode(webhook)) or ("", {}))[1]["message_id"] == "3EB0AB"
    assert reader.decode(b"\xc3\x01" + b"\x00" * 8 + b"x") is None
    assert reader.decode(b"not avro") is None


def test_the_oracle_imports_nothing_of_the_pipeline() -> None:
    code = (
        "import sys, tests.chaos.oracle;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mediaflow', 'processors', 'producers', 'storage')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
