"""Avro single-object encoding of :mod:`mediaflow.events` records.

Wire format (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | parsing canonical form | Avro binary body

Any Avro implementation that holds the ``.avsc`` can decode it. The codec is
the only place that knows the wire format: a Confluent Schema Registry
serializer can replace it by implementing the same two methods
(:meth:`AvroCodec.encode`, :meth:`AvroCodec.decode`).

Writing and reading are fastavro's (``schemaless_writer`` and
``schemaless_reader`` with the parsed schemas); its errors name what is wrong
with a bad record.

Evolution: records are always read with the *current* schema of their type.
Older writer schemas are registered with :meth:`AvroCodec.register_writer`
(or kept under ``schemas/history/``) and resolved by fingerprint.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import operator
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from mediaflow.errors import UndecodableRecord
from mediaflow.events import RECORD_TYPES
from mediaflow.schemas import NAMESPACE, SCHEMA_DIR
from mediaflow.text import utf8_safe

MAGIC = b"\xc3\x01"
HEADER_LENGTH = 10

T = TypeVar("T")


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """Return the 8-byte CRC-64-AVRO fingerprint of a parsed schema, as written on the wire."""
    # fastavro's hex digest already lists the bytes in the spec's little-endian order.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def load_schema(name: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Load ``<namespace>.<name>.avsc`` with its named references expanded."""
    return fastavro.schema.load_schema(directory / f"{NAMESPACE}.{name}.avsc", _write_hint=False)


@dataclasses.dataclass(frozen=True, slots=True)
class _Writer:
    record_type: type
    schema: dict[str, Any]


class AvroCodec:
    """Encode and decode every mediaflow record type.

    Example::

        codec = AvroCodec()
        data = codec.encode(event)
        assert codec.decode(data) == event
    """

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self._current: dict[type, tuple[dict[str, Any], bytes]] = {}
        self._writers: dict[bytes, _Writer] = {}
        for record_type in RECORD_TYPES:
            schema = fastavro.parse_schema(load_schema(record_type.__name__, schema_dir))
            fp = schema_fingerprint(schema)
            self._current[record_type] = (schema, fp)
            self._writers[fp] = _Writer(record_type, schema)
        history = schema_dir / "history"
        if history.is_dir():
            for path in sorted(history.glob("*.avsc")):
                self.register_writer(fastavro.schema.load_schema(path, _write_hint=False))

    def register_writer(self, schema: dict[str, Any]) -> bytes:
        """Accept records written with an older version of one of our schemas.

        Args:
            schema: the old schema; its full name must be a current record type.

        Returns:
            The fingerprint it is known by.

        """
        parsed = fastavro.parse_schema(schema)
        name = parsed["name"].rsplit(".", 1)[-1]
        record_type = next((t for t in RECORD_TYPES if t.__name__ == name), None)
        if record_type is None:
            raise ValueError(f"schema {parsed['name']!r} is not a mediaflow record type")
        fp = schema_fingerprint(parsed)
        self._writers[fp] = _Writer(record_type, parsed)
        return fp

    def fingerprint_of(self, record_type: type) -> bytes:
        """Return the fingerprint of the current schema of ``record_type``."""
        return self._current[record_type][1]

    def schema_of(self, record_type: type) -> dict[str, Any]:
        """Return the current parsed schema of ``record_type``."""
        return self._current[record_type][0]

    def encode(self, record: Any) -> bytes:
        """Encode a record dataclass as Avro single-object bytes.

        Avro strings are UTF-8. A string UTF-8 cannot hold (a lone surrogate,
        which only text from outside carries: a provider's error message, a
        file name, a request header) is written with U+FFFD in its place. The
        codec does it, not each place that builds an event, because every
        string of every event passes through here and a place that forgets
        would make failure reporting itself fail.
        """
        try:
            return self._encode(record)
        except UnicodeEncodeError:
            return self._encode(_utf8_safe_record(record))

    def _encode(self, record: Any) -> bytes:
        schema, fp = self._current[type(record)]
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(fp)
        fastavro.schemaless_writer(buffer, schema, _to_avro(record))
        return buffer.getvalue()

    def decode(self, data: bytes | None, expected: type[T] | None = None) -> T:
        """Decode single-object bytes into the record dataclass its fingerprint names.

        Args:
            data: the bytes of a Kafka record value.
            expected: when given, the decoded record must be of this type.

        Raises:
            UndecodableRecord: not single-object encoded, unknown fingerprint,
                corrupt body, or not of the expected type.

        """
        if not data or len(data) < HEADER_LENGTH or data[:2] != MAGIC:
            raise UndecodableRecord("value is not Avro single-object encoded (no C3 01 marker)")
        writer = self._writers.get(bytes(data[2:HEADER_LENGTH]))
        if writer is None:
            raise UndecodableRecord(
                f"unknown schema fingerprint {bytes(data[2:HEADER_LENGTH]).hex()}; "
                "the writer used a schema this codec was not given"
            )
        if expected is not None and writer.record_type is not expected:
            raise UndecodableRecord(
                f"expected {expected.__name__}, got {writer.record_type.__name__}"
            )
        reader_schema = self._current[writer.record_type][0]
        try:
            raw = fastavro.schemaless_reader(
                io.BytesIO(data[HEADER_LENGTH:]), writer.schema, reader_schema
            )
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise UndecodableRecord(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        try:
            return typing.cast(T, _from_avro(writer.record_type, raw))
        except (TypeError, ValueError) as exc:
            raise UndecodableRecord(
                f"record does not fit {writer.record_type.__name__}: {exc}"
            ) from exc


def _utf8_safe_record(value: Any) -> Any:
    """A copy of a record (or a field's value) with every string made UTF-8 safe."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {_utf8_safe_record(k): _utf8_safe_record(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _utf8_safe_record(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    return value


# Per record type: field name -> converter (None: the value is used as is), one
# plan per direction. Built once per type: walking dataclass fields and type hints
# on every record dominated encoding and decoding.
_WRITE_PLANS: dict[type, dict[str, Callable[[Any], Any] | None]] = {}


class _ReadPlan(typing.NamedTuple):
    fields: frozenset[str]
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]
    """Only the fields needing conversion (nested records, enums); the rest pass as read."""


_PLANS: dict[type, _ReadPlan] = {}


def _to_avro(record: Any) -> dict[str, Any]:
    plan = _WRITE_PLANS.get(type(record))
    if plan is None:
        hints = typing.get_type_hints(type(record))
        plan = _WRITE_PLANS[type(record)] = {
            f.name: _write_converter(hints[f.name]) for f in dataclasses.fields(record)
        }
    out = {}
    for name, convert in plan.items():
        value = getattr(record, name)
        out[name] = value if convert is None or value is None else convert(value)
    return out


def _write_converter(hint: Any) -> Callable[[Any], Any] | None:
    hint = _optional_inner(hint)
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _to_avro
        if issubclass(hint, Enum):
            return operator.attrgetter("value")
    return None


def _optional_inner(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0] if len(inner) == 1 else Any
    return hint


def _from_avro(record_type: type, raw: dict[str, Any]) -> Any:
    plan = _PLANS.get(record_type)
    if plan is None:
        hints = typing.get_type_hints(record_type)
        converters = tuple(
            (name, convert) for name, hint in hints.items() if (convert := _converter(hint))
        )
        plan = _PLANS[record_type] = _ReadPlan(frozenset(hints), converters)
    # fastavro's dict is ours to reuse; only fields the dataclass lacks must go.
    kwargs = raw if raw.keys() == plan.fields else {k: raw[k] for k in raw if k in plan.fields}
    for name, convert in plan.converters:
        value = kwargs.get(name)
        if value is not None:
            kwargs[name] = convert(value)
    return record_type(**kwargs)


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    hint = _optional_inner(hint)
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return functools.partial(_from_avro, hint)
        if issubclass(hint, Enum):
            return hint
    return None


__all__ = [
    "HEADER_LENGTH",
    "MAGIC",
    "AvroCodec",
    "load_schema",
    "schema_fingerprint",
]
