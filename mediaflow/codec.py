"""Avro single-object encoding of :mod:`mediaflow.events` records.

Wire format (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | parsing canonical form | Avro binary body

Any Avro implementation that holds the ``.avsc`` can decode it. The codec is
the only place that knows the wire format: a Confluent Schema Registry
serializer can replace it by implementing the same two methods
(:meth:`AvroCodec.encode`, :meth:`AvroCodec.decode`).

Writing: each record type gets a writer generated from its parsed schema at
start-up (as ``dataclasses`` and attrs generate ``__init__``): straight-line
code that reads the dataclass's attributes in schema order and appends their
Avro binary encoding. fastavro's writer walks the schema on every record; the
generated one writes the receiver's envelope in less than half the time;
without it the receiver takes over 5% fewer webhooks a second, the most the
project gives up for using a library as it is (``bench/README.md``). It covers
the types our schemas use (strings, bytes, int, long, boolean,
``timestamp-millis``, maps, nested records, unions of null and one type); a
schema with anything else, and any record the generated writer refuses, is
written by fastavro, whose bytes are the reference
(``tests/unit/mediaflow/test_codec.py`` compares the two) and whose errors
name what is wrong with a bad record.

At about 440 lines it stays one module: the generated writer is half of it,
and it is only correct together with the fastavro fallback and the schema
parsing beside it.

Evolution: records are always read with the *current* schema of their type.
Older writer schemas are registered with :meth:`AvroCodec.register_writer`
(or kept under ``schemas/history/``) and resolved by fingerprint.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import operator
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.write import LOGICAL_WRITERS

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
    plain: dict[str, Any]
    """The same schema with timestamps read as plain longs (:meth:`AvroCodec.decode_plain`)."""


class AvroCodec:
    """Encode and decode every mediaflow record type.

    Example::

        codec = AvroCodec()
        data = codec.encode(event)
        assert codec.decode(data) == event
    """

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self._current: dict[type, tuple[dict[str, Any], bytes]] = {}
        self._plain_readers: dict[type, dict[str, Any]] = {}
        self._writers: dict[bytes, _Writer] = {}
        self._generated: dict[type, Callable[[Any], bytes]] = {}
        for record_type in RECORD_TYPES:
            schema = fastavro.parse_schema(load_schema(record_type.__name__, schema_dir))
            fp = schema_fingerprint(schema)
            self._current[record_type] = (schema, fp)
            self._writers[fp] = _Writer(record_type, schema, plain_timestamps(schema))
            self._plain_readers[record_type] = self._writers[fp].plain
            generated = generate_writer(record_type, schema, MAGIC + fp)
            if generated is not None:
                self._generated[record_type] = generated
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
        self._writers[fp] = _Writer(record_type, parsed, plain_timestamps(parsed))
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
        generated = self._generated.get(type(record))
        if generated is not None:
            try:
                return generated(record)
            except (AttributeError, TypeError, ValueError, OverflowError):
                pass  # a bad record: fastavro, below, refuses it and names the field
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
        writer, body = self._writer_of(data)
        if expected is not None and writer.record_type is not expected:
            raise UndecodableRecord(
                f"expected {expected.__name__}, got {writer.record_type.__name__}"
            )
        reader_schema = self._current[writer.record_type][0]
        raw = _read(body, writer.schema, reader_schema)
        try:
            return typing.cast(T, _from_avro(writer.record_type, raw))
        except (TypeError, ValueError) as exc:
            raise UndecodableRecord(
                f"record does not fit {writer.record_type.__name__}: {exc}"
            ) from exc

    def decode_plain(self, data: bytes | None) -> tuple[type, dict[str, Any]]:
        """Decode single-object bytes into the Avro record as read, without its dataclass.

        What a reader that needs only a few fields of many records (the
        projection's rebuild) decodes with: the record as fastavro reads it
        with the current schema of its type (nested records as dicts, enums
        as their strings), except that every ``timestamp-millis`` is left as
        the epoch milliseconds it is written as. Converting those to
        ``datetime`` and building the dataclasses is most of what
        :meth:`decode` costs.

        Returns:
            The record's dataclass type, and its fields by name.

        Raises:
            UndecodableRecord: not single-object encoded, unknown fingerprint, corrupt body.
        """
        writer, body = self._writer_of(data)
        reader = self._plain_readers[writer.record_type]
        # The current schema resolves only what an older writer wrote.
        fields = _read(body, writer.plain, None if reader is writer.plain else reader)
        return writer.record_type, fields

    def _writer_of(self, data: bytes | None) -> tuple[_Writer, bytes]:
        """The writer of single-object bytes, and their Avro body."""
        if not data or len(data) < HEADER_LENGTH or data[:2] != MAGIC:
            raise UndecodableRecord("value is not Avro single-object encoded (no C3 01 marker)")
        writer = self._writers.get(bytes(data[2:HEADER_LENGTH]))
        if writer is None:
            raise UndecodableRecord(
                f"unknown schema fingerprint {bytes(data[2:HEADER_LENGTH]).hex()}; "
                "the writer used a schema this codec was not given"
            )
        return writer, data[HEADER_LENGTH:]


def _read(body: bytes, writer: dict[str, Any], reader: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return typing.cast(
            dict[str, Any], fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
        )
    except Exception as exc:  # fastavro raises many types on corrupt input
        raise UndecodableRecord(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc


def plain_timestamps(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a parsed copy of ``schema`` whose ``timestamp-millis`` fields are plain longs.

    The same bytes on the wire (a logical type only annotates its underlying
    type), read as ``int`` epoch milliseconds instead of ``datetime``.
    """

    def plain(node: Any) -> Any:
        if isinstance(node, list):
            return [plain(item) for item in node]
        if not isinstance(node, dict):
            return node
        if node.get("logicalType") == "timestamp-millis" and node.get("type") == "long":
            return "long"
        return {k: plain(v) for k, v in node.items() if not k.startswith("__")}

    return typing.cast(dict[str, Any], fastavro.parse_schema(plain(schema)))


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


class _Unsupported(Exception):
    """A schema construct the generated writers do not cover; fastavro writes that type."""


def generate_writer(
    record_type: type, schema: dict[str, Any], header: bytes
) -> Callable[[Any], bytes] | None:
    """Generate the writer of ``record_type``: its single-object bytes, header first.

    Args:
        record_type: the dataclass; it must have an attribute for every schema field.
        schema: its parsed schema (``fastavro.parse_schema``).
        header: what precedes the Avro body (marker and fingerprint).

    Returns:
        The writer, or ``None`` when the schema uses a construct it does not
        cover (the type is then written by fastavro).

    """
    source = _Source(named=schema.get("__named_schemas", {}))
    source.line(1, "out = [HEADER]")
    source.line(1, "put = out.append")
    try:
        source.record(1, "record", schema, record_type)
    except _Unsupported:
        return None
    source.line(1, 'return b"".join(out)')
    code = "def write(record):\n" + "\n".join(source.lines)
    namespace = {"HEADER": header, **source.constants}
    exec(compile(code, f"<avro writer of {record_type.__name__}>", "exec"), namespace)
    return typing.cast(Callable[[Any], bytes], namespace["write"])


def _write_long(n: int) -> bytes:
    """Avro's ``int`` and ``long``: zig-zag, then a little-endian base-128 varint."""
    if not -(1 << 63) <= n < 1 << 63:  # fastavro's limit too
        raise OverflowError(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SHORT_LENGTHS = tuple(bytes([2 * n]) for n in range(64))
"""The encoded length of strings and bytes shorter than 64 (one byte), looked up."""


class _Source:
    """The lines of one generated writer, emitted while walking its schema."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "write_long": _write_long,
            "SHORT": _SHORT_LENGTHS,
            "TIMESTAMP_MILLIS": LOGICAL_WRITERS["long-timestamp-millis"],
        }
        self._named = named
        self._ids = itertools.count()

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def local(self, depth: int, value: str) -> str:
        """Bind ``value`` to a fresh local name (read once, used twice)."""
        name = f"v{next(self._ids)}"
        self.line(depth, f"{name} = {value}")
        return name

    def record(self, depth: int, value: str, schema: dict[str, Any], record_type: Any) -> None:
        if not dataclasses.is_dataclass(record_type):
            raise _Unsupported(f"record {schema['name']} is not written from a dataclass")
        hints = typing.get_type_hints(record_type)
        for field in schema["fields"]:
            if field["name"] not in hints:
                raise _Unsupported(f"{record_type.__name__} has no field {field['name']}")
            self.value(depth, f"{value}.{field['name']}", field["type"], hints[field["name"]])

    def value(self, depth: int, value: str, schema: Any, hint: Any) -> None:
        if isinstance(schema, list):
            self.nullable(depth, value, schema, hint)
            return
        if isinstance(schema, str) and schema in self._named:
            schema = self._named[schema]
        if isinstance(schema, dict):
            self.complex(depth, value, schema, hint)
            return
        inner = _optional_inner(hint)
        if isinstance(inner, type) and issubclass(inner, Enum):
            value = f"{value}.value"
        if schema == "string":
            value = f"{value}.encode()"
        if schema in ("string", "bytes"):
            data = self.local(depth, value)
            size = self.local(depth, f"len({data})")
            self.line(depth, f"put(SHORT[{size}] if {size} < 64 else write_long({size}))")
            self.line(depth, f"put({data})")
        elif schema in ("int", "long"):
            self.line(depth, f"put(write_long({value}))")
        elif schema == "boolean":
            self.line(depth, f'put(b"\\x01" if {value} else b"\\x00")')
        else:
            raise _Unsupported(f"type {schema!r}")

    def nullable(self, depth: int, value: str, schema: list[Any], hint: Any) -> None:
        if len(schema) != 2 or "null" not in schema:
            raise _Unsupported(f"union {schema!r}")
        null_index = schema.index("null")
        bound = self.local(depth, value)
        self.line(depth, f"if {bound} is None:")
        self.line(depth + 1, f"put({bytes([2 * null_index])!r})")
        self.line(depth, "else:")
        self.line(depth + 1, f"put({bytes([2 * (1 - null_index)])!r})")
        self.value(depth + 1, bound, schema[1 - null_index], _optional_inner(hint))

    def complex(self, depth: int, value: str, schema: dict[str, Any], hint: Any) -> None:
        kind, logical = schema["type"], schema.get("logicalType")
        if logical == "timestamp-millis" and kind == "long":
            constant = f"SCHEMA{next(self._ids)}"  # fastavro's conversion, given what it expects
            self.constants[constant] = schema
            self.line(depth, f"put(write_long(TIMESTAMP_MILLIS({value}, {constant})))")
        elif logical is not None:
            raise _Unsupported(f"logical type {logical!r}")
        elif kind == "record":
            self.record(depth, self.local(depth, value), schema, _optional_inner(hint))
        elif kind == "map":
            entries = self.local(depth, value)
            self.line(depth, f"if {entries}:")
            self.line(depth + 1, f"put(write_long(len({entries})))")
            key, item = f"k{next(self._ids)}", f"v{next(self._ids)}"
            self.line(depth + 1, f"for {key}, {item} in {entries}.items():")
            self.value(depth + 2, key, "string", str)
            self.value(depth + 2, item, schema["values"], Any)
            self.line(depth, 'put(b"\\x00")')
        elif isinstance(kind, str) and kind in _PRIMITIVES:
            self.value(depth, value, kind, hint)
        else:
            raise _Unsupported(f"type {kind!r}")


_PRIMITIVES = frozenset({"string", "bytes", "int", "long", "boolean"})


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
    "generate_writer",
    "load_schema",
    "plain_timestamps",
    "schema_fingerprint",
]
