"""The Celery side-by-side's pure parts: the judging, the table, the task argument, /proc."""

from __future__ import annotations

import dataclasses

from bench.baselines.celery.cpu import own_cpu_s
from bench.baselines.celery.media import from_message, to_message
from bench.baselines.celery.report import fates, markdown, percentile, summary
from mediaflow.processors.downloader.keys import object_key
from mediaflow.providers import parse_webhook
from simulator.media import MediaLibrary
from simulator.webhooks import WebhookFactory
from tests.chaos.oracle import LedgerMedia

SHA = {name: name * 64 for name in "abcd"}


def entry(name: str, *, accepted: bool = True, fate: str = "store") -> LedgerMedia:
    return LedgerMedia(
        provider="wapi",
        client_id="2",
        instance_id="I",
        message_id=f"M{name}",
        media_type="image",
        day="2024/11/28",
        sha256=SHA[name],
        size=10,
        fate=fate,
        accepted=accepted,
    )


def key(name: str, suffix: str = "jpg") -> str:
    return f"cliente_2/instance_I/image/2024/11/28/M{name}-{SHA[name][:12]}.{suffix}"


def test_each_media_is_stored_once_lost_or_duplicated_as_the_bucket_shows() -> None:
    ledger = [entry("a"), entry("b"), entry("c"), entry("d", accepted=False)]
    objects = {key("a"): SHA["a"], key("b"): SHA["b"], key("b", "jpeg"): SHA["b"]}
    stored_at = {key("a"): 105.5, key("b"): 110.0, key("b", "jpeg"): 111.0}

    fate = fates(ledger, objects, [], stored_at, {"Ma": 100.0, "Mb": 100.0, "Mc": 100.0})

    assert (fate.meant, fate.stored, fate.lost, fate.duplicated, fate.wrong) == (3, 1, 1, 1, 0)
    assert fate.latencies_s == (5.5,)


def test_an_object_under_another_media_s_key_or_of_unknown_bytes_is_wrong() -> None:
    objects = {key("b"): SHA["a"], "stray": "f" * 64}
    fate = fates([entry("a")], objects, ["open upload"], {}, {})
    assert fate.stored == 0
    assert fate.wrong == 3  # the wrong key, the unknown bytes, the open upload


def test_a_media_not_meant_to_be_stored_is_not_counted_as_lost() -> None:
    fate = fates([entry("a", fate="invalid_payload")], {}, [], {}, {})
    assert (fate.meant, fate.lost) == (0, 0)


def test_the_table_shows_each_system_side_by_side_with_cpu_per_thousand_media() -> None:
    fate = fates([entry("a")], {key("a"): SHA["a"]}, [], {key("a"): 2.0}, {"Ma": 1.0})
    column = summary(fate, accepted=1, sent=2, cpu_s={"roles": 3.0, "kafka": 1.0}, broker="kafka")
    assert column["cpu_s_per_1000_media"] == 4000.0
    assert column["cpu_s_per_1000_media_without_broker"] == 3000.0
    text = markdown({"mediaflow": {**column, "operator": "dlq"}, "Celery": {"lost": 2}})
    assert "| lost | 0 | 2 |" in text
    assert "| accepted -> stored p50 (s) | 1.00 | - |" in text
    assert "| CPU s per 1,000 media stored, the broker excluded | 3000.0 | - |" in text
    assert "| what an operator can list and retry | dlq | - |" in text


def test_percentiles_take_the_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_a_media_survives_the_task_argument_and_keeps_its_object_key() -> None:
    factory = WebhookFactory(MediaLibrary(1), cdn_url="http://127.0.0.1:1", files_url="http://x")
    hook = factory.wapi_media(factory.library.mixed(1)[0], wrapper="ephemeralMessage")
    found = parse_webhook("wapi", hook.payload(), client_id="2", instance_id=hook.instance_id)
    media = found.media[0]

    media_id, info, source = from_message(to_message(media))

    assert (media_id, info, source) == (media.media_id, media.info, media.source)
    assert object_key(info, media_id, "0" * 64) == object_key(media.info, media_id, "0" * 64)
    assert dataclasses.asdict(source)["media_key"]


def test_the_cpu_time_of_a_process_is_read_past_a_name_holding_parentheses() -> None:
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 6 + ["777"] + ["0"] * 30
    stat = "42 (celery (worker)) " + " ".join(fields)
    start, seconds = own_cpu_s(stat)
    assert start == 777
    assert seconds == 300 / 100  # SC_CLK_TCK is 100 on Linux
