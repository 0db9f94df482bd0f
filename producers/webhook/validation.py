"""Pure checks of a webhook request: size, content type, JSON, required fields.

Each check raises :class:`Rejected` carrying the HTTP status and a message that
tells the sender what is wrong. Nothing here does I/O, so every rule is
unit-tested without a server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from mediaflow.errors import ErrorKind, InvalidPayload, MediaflowError
from mediaflow.events import Provider
from mediaflow.providers import EnvelopeFields, read_envelope

JSON_TYPES = ("application/json",)
"""Content types accepted besides any ``application/*+json``."""


class Rejected(MediaflowError):
    """A request the receiver refuses, with the status that says what the client should do.

    A 4xx: the client must change the request before retrying. A 503 (with
    ``Retry-After``): the receiver cannot take it now; the same request later can pass.

    Attributes:
        status: the HTTP status to answer with.
        error: a short stable word for the JSON ``error`` field.
        hang_up: the connection cannot carry another request (the rest of its
            body is missing or unreadable): close it once the answer is out.
        headers: HTTP headers the answer must carry (``Allow`` on a 405).

    """

    kind = ErrorKind.INVALID_PAYLOAD

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        hang_up: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.hang_up = hang_up
        self.headers = dict(headers or {})


def too_large(limit: int) -> Rejected:
    """Return the rejection for a body over ``limit`` bytes (413)."""
    return Rejected(413, "payload_too_large", f"the body exceeds the limit of {limit} bytes")


def body_timeout(timeout_s: float) -> Rejected:
    """Return the rejection for a body that did not arrive within ``timeout_s`` (408)."""
    return Rejected(
        408,
        "body_timeout",
        f"the body did not arrive within {timeout_s:g} s of the headers; send it whole and retry",
        hang_up=True,
    )


def unreadable_body(reason: str) -> Rejected:
    """Return the rejection for a body whose ``Content-Encoding`` does not decode (400).

    Args:
        reason: what the HTTP parser found, e.g. ``Can not decode content-encoding: gzip``.

    """
    return Rejected(400, "unreadable_body", f"the body could not be read: {reason}", hang_up=True)


CLIENT_CLOSED_REQUEST = 499
"""nginx's status for "the client went away before its request was complete"; never sent."""


def client_gone() -> Rejected:
    """Return the refusal recorded when the client closed the connection mid-body (499)."""
    return Rejected(
        CLIENT_CLOSED_REQUEST,
        "client_closed_request",
        "the client closed the connection before its body was complete",
    )


def no_such_path(path: str, webhook_paths: Iterable[str]) -> Rejected:
    """Return the refusal of a path the receiver does not serve (404), naming those it does."""
    return Rejected(
        404,
        "not_found",
        f"nothing is served at {path}; webhooks go to POST {', '.join(webhook_paths)}",
    )


def method_not_allowed(method: str, path: str, allowed: Iterable[str]) -> Rejected:
    """Return the refusal of a method ``path`` does not take (405, with ``Allow``)."""
    allow = ", ".join(allowed)
    return Rejected(
        405,
        "method_not_allowed",
        f"{path} does not take {method}; it takes {allow}",
        headers={"Allow": allow},
    )


def wants_continue(expect: str | None) -> bool:
    """Whether the client waits for ``100 Continue`` before sending its body.

    Args:
        expect: the request's ``Expect`` header, ``None`` when absent.

    Raises:
        Rejected: 417 for any expectation but ``100-continue``, the only one HTTP defines.

    """
    if expect is None:
        return False
    if expect.strip().lower() == "100-continue":
        return True
    raise Rejected(
        417, "expectation_failed", f"Expect: {expect[:64]!r} is not supported; send 100-continue"
    )


def check_declared_length(content_length: int | None, limit: int) -> None:
    """Refuse a body whose declared ``Content-Length`` is over ``limit``, before reading it.

    Args:
        content_length: the header's value, ``None`` when absent (chunked).
        limit: the largest accepted body, in bytes.

    Raises:
        Rejected: 413 when the declared length is over the limit.

    """
    if content_length is not None and content_length > limit:
        raise too_large(limit)


def check_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` (any parameters) and ``application/*+json``.

    Args:
        content_type: the ``Content-Type`` header as sent, ``None`` when absent.

    Raises:
        Rejected: 415 for anything else, naming what was sent.

    """
    # The media type is what comes before any parameter (RFC 9110 8.3.1): read
    # here, not through aiohttp's parse of the whole header and its parameters.
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    shown = media_type or "none"
    raise Rejected(
        415, "unsupported_media_type", f"content type {shown!r} is not JSON; send application/json"
    )


_FAST_JSON = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    """Parse a JSON body (UTF-8, -16 or -32, as RFC 8259 allows).

    msgspec parses the usual body, UTF-8 JSON, at a fraction of the standard
    library's cost (``bench/README.md``). What msgspec refuses is parsed
    again by the standard library, which has the last word: it still accepts
    what it always did (UTF-16 and -32, a byte order mark, ``NaN``, numbers past
    a float's range, lone surrogates) and words the error, with its position,
    when the body is not JSON. Either way the value is the one ``json.loads``
    returns.

    Args:
        body: the raw request body.

    Raises:
        Rejected: 400 when it is not JSON, with the line, column and offset of the
            first error, or when it is not decodable text, nested too deeply or
            holds an integer with more digits than Python converts.

    """
    try:
        return _FAST_JSON.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise Rejected(
            400,
            "invalid_json",
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})",
        ) from exc
    except UnicodeDecodeError as exc:
        raise Rejected(
            400, "invalid_json", f"the body is not UTF-8 text (bad byte at offset {exc.start})"
        ) from exc
    except RecursionError as exc:
        raise Rejected(400, "invalid_json", "the JSON is nested too deeply") from exc
    except ValueError as exc:
        # What is left of ValueError once the two above are caught: an integer
        # past the digits Python converts (sys.get_int_max_str_digits).
        raise Rejected(
            400,
            "invalid_json",
            f"a number has more than {sys.get_int_max_str_digits()} digits; send it as a string",
        ) from exc


def envelope_fields(provider: Provider, payload: Any) -> EnvelopeFields:
    """Read the routing fields the envelope needs from a parsed body.

    Args:
        provider: the endpoint the request came to.
        payload: the parsed JSON.

    Raises:
        Rejected: 422 when the body is not an object or a required field is missing;
            the detail names the field as the provider spells it.

    """
    if not isinstance(payload, dict):
        raise Rejected(
            422, "invalid_payload", f"the body is a JSON {_json_type(payload)}, not an object"
        )
    try:
        return read_envelope(provider, payload)
    except InvalidPayload as exc:
        raise Rejected(422, exc.kind.value, exc.message) from exc


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "JSON_TYPES",
    "Rejected",
    "body_timeout",
    "check_content_type",
    "check_declared_length",
    "client_gone",
    "envelope_fields",
    "method_not_allowed",
    "no_such_path",
    "parse_json",
    "too_large",
    "unreadable_body",
    "wants_continue",
]
