import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaflow.events import Provider
from mediaflow.producers.webhook.validation import (
    Rejected,
    check_content_type,
    check_declared_length,
    envelope_fields,
    parse_json,
    wants_continue,
)


def test_declared_length_over_the_limit_is_413() -> None:
    with pytest.raises(Rejected) as caught:
        check_declared_length(1025, 1024)
    assert caught.value.status == 413


def test_declared_length_at_the_limit_or_absent_passes() -> None:
    check_declared_length(1024, 1024)
    check_declared_length(None, 1024)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/cloudevents+json",
        "application/json; charset=utf-8",
        " Application/Json ;charset=latin-1",
    ],
)
def test_json_content_types_pass(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain'"),
        ("text/plain; charset=utf-8", "'text/plain'"),
        ("", "'none'"),
        (None, "'none'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
        ("application/json-seq", "'application/json-seq'"),
    ],
)
def test_other_content_types_are_415_naming_the_media_type(
    content_type: str | None, named: str
) -> None:
    with pytest.raises(Rejected) as caught:
        check_content_type(content_type)
    assert caught.value.status == 415
    assert f"content type {named} is not JSON" in caught.value.message


@pytest.mark.parametrize(
    ("expect", "waits"), [(None, False), ("100-continue", True), ("100-Continue ", True)]
)
def test_a_client_waits_for_100_continue_only_when_it_says_so(
    expect: str | None, waits: bool
) -> None:
    assert wants_continue(expect) is waits


def test_an_expectation_other_than_100_continue_is_417() -> None:
    with pytest.raises(Rejected) as caught:
        wants_continue("gzip-please")
    assert (caught.value.status, caught.value.error) == (417, "expectation_failed")


def test_invalid_json_names_line_column_and_offset() -> None:
    with pytest.raises(Rejected) as caught:
        parse_json(b'{\n  "a": 1,\n}')
    assert caught.value.status == 400
    assert "line 3 column 1 (char 12)" in caught.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"instanceId": "i", "n": 1.5}', {"instanceId": "i", "n": 1.5}),
        ('{"instanceId": "i"}'.encode("utf-16"), {"instanceId": "i"}),
        (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"s": "\\ud800"}', {"s": "\ud800"}),
    ],
)
def test_valid_json_parses_to_the_same_value(body: bytes, expected: object) -> None:
    assert parse_json(body) == expected


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN and infinities too: json.dumps writes them, json.loads reads them
    | st.text()
    | st.sampled_from(["\ud800", "\udfff x"]),  # lone surrogates
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """JSON documents in every encoding json.loads reads, some with one byte changed."""
    text = json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]))
    body = text.encode(encoding, errors="surrogatepass")
    if body and draw(st.booleans()):
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    return body


@given(st.one_of(json_bodies(), st.binary(max_size=64)))
def test_a_body_parses_to_what_json_loads_returns_or_is_400(body: bytes) -> None:
    # The fast parser must never change what a body means, nor accept what
    # the standard library refuses.
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(Rejected) as caught:
            parse_json(body)
        assert caught.value.status == 400
    else:
        assert repr(parse_json(body)) == repr(expected)  # repr: NaN equals NaN, 1 is not 1.0


def test_deeply_nested_json_is_400_not_a_crash() -> None:
    with pytest.raises(Rejected) as caught:
        parse_json(b"[" * 200_000)
    assert caught.value.status == 400


@pytest.mark.parametrize("number", [b"1" * 5000, b"-" + b"9" * 4301], ids=["5000", "-4301"])
def test_an_integer_past_pythons_digit_limit_is_400_not_an_error(number: bytes) -> None:
    # msgspec refuses it as out of range, and json.loads raises a plain ValueError.
    with pytest.raises(Rejected) as caught:
        parse_json(b'{"x": ' + number + b"}")
    assert (caught.value.status, caught.value.error) == (400, "invalid_json")
    assert "4300 digits" in caught.value.message


def test_undecodable_bytes_are_400() -> None:
    with pytest.raises(Rejected) as caught:
        parse_json(b'{"a": "\xff"}')
    assert caught.value.status == 400


def test_a_json_array_is_422() -> None:
    with pytest.raises(Rejected) as caught:
        envelope_fields(Provider.WAPI, [1])
    assert (caught.value.status, caught.value.message) == (
        422,
        "the body is a JSON array, not an object",
    )


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        (Provider.WAPI, "instanceId"),
        (Provider.EVOLUTION, "instance"),
        (Provider.ZAPI, "instanceId"),
    ],
)
def test_a_missing_instance_is_422_naming_the_providers_field(
    provider: Provider, field: str
) -> None:
    with pytest.raises(Rejected) as caught:
        envelope_fields(provider, {"event": "x", "type": "x"})
    assert caught.value.status == 422
    assert f"'{field}'" in caught.value.message
