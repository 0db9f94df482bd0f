"""structlog set-up shared by every role, with secrets redacted by a processor.

One media can be followed across stages with one grep: stages bind
``media_id``, ``event_id``, ``client_id``, ``instance_id`` and the Kafka
coordinates (``topic``, ``partition``, ``offset``) into the context of each
record they handle (see :func:`record_context`).

Redaction does not depend on discipline. :class:`RedactSecrets`:

* masks every value whose key names a secret (``token``, ``secret``,
  ``password``, ``media_key``, ``authorization``...);
* replaces every occurrence of a registered secret value (tenant tokens,
  webhook secrets, S3 keys, the API token) anywhere in any string;
* masks the whole user-info, query and fragment of every URL, whatever its
  scheme (database URLs carry passwords, CDN links signatures, and some
  providers put tokens in the query string): see :func:`mask_urls`.

Text UTF-8 cannot hold (a lone surrogate in a provider's message) is logged
with U+FFFD in its place (:mod:`mediaflow.text`), so no log line can raise.

The standard library's records (librdkafka, botocore, aiohttp) pass through
the same processors and renderer, so they are redacted and rendered like ours.
aiohttp logs a request it cannot parse, and a client that hung up before its
answer, as errors with a traceback (the first quoting the offending bytes);
both are the client's doing, so they become one info line each instead:
``http_request_malformed`` and ``http_client_gone``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from mediaflow.text import utf8_safe

REDACTED = "****"
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|credential|authorization|api[_-]?key|media_?key|access_key)",
    re.IGNORECASE,
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+._-]*://[^\s\"'<>]*")


def mask_url(url: str) -> str:
    """Return ``url`` with its whole user-info, query and fragment replaced by ``****``.

    The user-info runs to the *last* ``@`` before the first ``/`` after the
    scheme, so a password holding ``@``, ``:``, ``?`` or ``#`` is masked whole
    (``postgresql://u:p@ss@db/x`` becomes ``postgresql://****@db/x``).
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, _host = rest.split("/", 1)[0].rpartition("@")
    if at:
        rest = REDACTED + rest[len(userinfo) :]
    cuts = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if cuts:
        rest = rest[: min(cuts) + 1] + REDACTED
    return f"{scheme}://{rest}"


def mask_urls(text: str) -> str:
    """Apply :func:`mask_url` to every URL in ``text``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: mask_url(match.group()), text)


class RedactSecrets:
    """structlog processor that removes secrets from every event dict."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values (short ones are ignored: they would mask noise)."""
        self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        """Redact one event dict in place (structlog processor protocol)."""
        for key in list(event):
            event[key] = self._clean(key, event[key])
        return event

    def _clean(self, key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def scrub(self, text: str) -> str:
        """Return ``text`` with registered secrets and URL credentials and queries masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return mask_urls(text)


_redactor = RedactSecrets()


def register_secrets(secrets: Iterable[str]) -> None:
    """Make the log pipeline mask these values wherever they appear."""
    _redactor.add(secrets)


def scrub(text: str) -> str:
    """Mask registered secrets and URL credentials and queries in ``text`` (errors too)."""
    return _redactor.scrub(text)


def _scrub_exception(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    # Runs after format_exc_info: tracebacks may quote a URL or a header value.
    if isinstance(event.get("exception"), str):
        event["exception"] = _redactor.scrub(event["exception"])
    return event


def _utf8_safe(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    # Last before rendering: a lone surrogate in a provider's text would make the
    # stream raise (console) or write an escape strict JSON readers refuse (json).
    for key in list(event):
        value = event[key]
        safe_key = _safe_value(key)
        if safe_key is not key:
            del event[key]
        event[safe_key] = _safe_value(value)
    return event


def _safe_value(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {_safe_value(k): _safe_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe_value(v) for v in value]
    return value


def _component_from_record(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    # A standard-library record is named by its logger, as ours are by component.
    record = event.get("_record")
    if record is not None:
        event.setdefault("component", record.name)
    return event


class _ClientFaultsAreInfo(logging.Filter):
    """Turn aiohttp's tracebacks for what a client did into one info line each."""

    def __init__(self, min_level: int) -> None:
        super().__init__()
        self._min_level = min_level

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.name != "aiohttp.server" or error is None:
            return True
        if isinstance(error, RequestPayloadError):  # met while discarding an unread body
            error = error.__cause__
        if isinstance(error, HttpProcessingError):
            event, reason = "http_request_malformed", error.message
        elif isinstance(error, ConnectionResetError):
            event, reason = "http_client_gone", str(error)
        else:
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args, record.exc_info = event, (), None
        record.reason = f"{type(error).__name__}: {reason}"
        return self._min_level <= logging.INFO


def configure(*, fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging, for librdkafka/botocore) once, at start-up.

    Args:
        fmt: ``json`` (production), ``console`` (people), or ``auto``: console
            when the stream is a terminal.
        level: minimum level name.
        stream: where to write; stderr by default.

    """
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redactor,
        structlog.processors.format_exc_info,
        _scrub_exception,
        _utf8_safe,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_component_from_record, structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_ClientFaultsAreInfo(numeric))
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
    global _generation
    _generation += 1


@contextmanager
def record_context(**values: Any) -> Iterator[None]:
    """Bind ``values`` to every log line written inside the block (contextvars, task-safe)."""
    tokens = structlog.contextvars.bind_contextvars(
        **{k: v for k, v in values.items() if v is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> Any:
    """Return the logger of a component: a structlog logger tagged with ``component=name``."""
    return ComponentLogger(name)


class ComponentLogger:
    """A module-level logger that binds to the configuration once, not on every call.

    structlog's lazy proxy builds a new bound logger for every call, even for a
    debug line the level then drops, a cost the webhook's request path paid on
    every request (figures in ``bench/README.md``). Its own cure, caching on
    first use, would pin whatever configuration was current then; this one
    binds again after each :func:`configure`.
    """

    __slots__ = ("_bound", "_component", "_generation")

    def __init__(self, component: str) -> None:
        self._component = component
        self._bound: Any = None
        self._generation = -1

    def __getattr__(self, name: str) -> Any:
        if self._generation != _generation:
            self._bound = structlog.get_logger(component=self._component).bind()
            self._generation = _generation
        return getattr(self._bound, name)


_generation = 0
"""Bumped by :func:`configure`; a :class:`ComponentLogger` of an older one binds again."""


__all__ = [
    "REDACTED",
    "ComponentLogger",
    "RedactSecrets",
    "configure",
    "get_logger",
    "mask_url",
    "mask_urls",
    "record_context",
    "register_secrets",
    "scrub",
]
