import io
import json
import sys

from mediaflow import logging as mflog


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_module_level_logger_follows_each_new_configuration() -> None:
    log = mflog.get_logger("mediaflow.test")
    first, second = io.StringIO(), io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=first)
        log.info("before")
        log.debug("dropped")
        mflog.configure(fmt="json", level="debug", stream=second)
        log.debug("after")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    assert [(e["event"], e["component"]) for e in _lines(first)] == [("before", "mediaflow.test")]
    assert [e["event"] for e in _lines(second)] == ["after"]


def test_a_bound_logger_keeps_its_context_and_redacts_secrets() -> None:
    stream = io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=stream)
        mflog.get_logger("mediaflow.test").bind(media_id="m-1").info("stored", token="s3cr3t")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    (line,) = _lines(stream)
    assert (line["media_id"], line["token"]) == ("m-1", mflog.REDACTED)
    assert "s3cr3t" not in stream.getvalue()
