"""Typed, frozen settings, read once at the entry point.

Sources, later ones win:

1. defaults, which point at the local stack started by ``deploy/stack.sh``;
2. an optional TOML file named by ``MEDIAFLOW_CONFIG_FILE`` (keys are the
   variable names below, lower case, without the prefix);
3. environment variables prefixed ``MEDIAFLOW_``.

librdkafka client properties pass through unchanged for real clusters:
``MEDIAFLOW_KAFKA_PROP_SECURITY_PROTOCOL=SASL_SSL`` becomes
``security.protocol=SASL_SSL`` (in the file: a ``[kafka_properties]`` table).

Nothing below the entry point reads the environment: every component gets the
:class:`Settings` (or the part of it it needs) passed in.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow.errors import ConfigError

PREFIX = "MEDIAFLOW_"
KAFKA_PROP_PREFIX = "MEDIAFLOW_KAFKA_PROP_"
REPO_ROOT = Path(__file__).resolve().parent.parent


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or tracebacks.

    Call :meth:`reveal` at the one place that needs the real value.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value. Never log the result."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('****')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values a numeric setting accepts; checked whenever settings are built.

    Kept as field metadata (see :func:`_bounded`), beside the default it constrains.
    """

    lowest: float
    highest: float | None = None
    exclusive: bool = False
    """Whether ``lowest`` itself is refused (a timeout of 0 is no timeout)."""

    def problem(self, value: float) -> str | None:
        """Say what is wrong with ``value``, or return ``None`` when it is accepted."""
        if self.exclusive and value <= self.lowest:
            return f"must be greater than {_number(self.lowest)}"
        if value < self.lowest:
            return f"must be at least {_number(self.lowest)}"
        if self.highest is not None and value > self.highest:
            return f"must be at most {_number(self.highest)}"
        return None


def _number(value: float) -> str:
    """``5242880`` rather than ``5.24288e+06``, ``-1`` rather than ``-1.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounded(
    default: Any, lowest: float, highest: float | None = None, *, exclusive: bool = False
) -> Any:
    """A dataclass field holding ``default`` whose values must stay within these bounds."""
    return field(default=default, metadata={"bounds": Bounds(lowest, highest, exclusive)})


def _positive(default: Any) -> Any:
    return _bounded(default, 0, exclusive=True)


MAX_PORT = 65535
MIN_PART_SIZE = 5 * 1024 * 1024
"""S3 refuses a multipart upload whose parts (all but the last) are smaller."""
MAX_PRESIGN_TTL_S = 7 * 24 * 3600
"""SigV4 presigned URLs live at most seven days."""
MAX_LINGER_MS = 900_000
"""librdkafka's own ceiling for ``linger.ms``."""
MAX_BATCH_MESSAGES = 1_000_000
"""librdkafka's own ceiling for ``batch.num.messages``."""
LOCAL_API_TOKEN = "local-api-token"
"""The API token of the local stack: public, so the API accepts it on loopback only."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the broker is, how clients talk to it, and the topic names in use."""

    bootstrap_servers: str = "127.0.0.1:9092"
    properties: Mapping[str, str] = field(default_factory=dict)
    topic_prefix: str = ""
    topics_file: Path = REPO_ROOT / "deploy" / "topics.toml"
    topics_profile: str = ""
    client_id: str = field(default_factory=lambda: f"mediaflow-{socket.gethostname()}")

    def topic(self, logical_name: str) -> str:
        """Return the real topic name for a logical one (``media.events`` -> prefixed)."""
        return f"{self.topic_prefix}{logical_name}"


@dataclass(frozen=True, slots=True)
class S3Settings:
    """The S3-compatible object store (AWS, MinIO, R2, S3Proxy...)."""

    endpoint_url: str | None = "http://127.0.0.1:9000"
    region: str = "us-east-1"
    bucket: str = "mediaflow-media"
    access_key: Secret = field(default_factory=lambda: Secret("mediaflow"))
    secret_key: Secret = field(default_factory=lambda: Secret("mediaflow-local-secret"))
    addressing_style: str = "path"
    multipart_threshold: int = _bounded(16 * 1024 * 1024, 1)
    part_size: int = _bounded(8 * 1024 * 1024, MIN_PART_SIZE)
    presign_ttl_s: int = _bounded(300, 1, MAX_PRESIGN_TTL_S)

    def __post_init__(self) -> None:
        _check_bounds(self)


@dataclass(frozen=True, slots=True)
class DownloaderSettings:
    """How media are fetched and checked.

    How often and when a failed download is tried again is not here: the
    retry tiers are topics, declared in the topics file (``MEDIAFLOW_TOPICS_FILE``).
    """

    wapi_base_url: str = "https://api.w-api.app"
    cdn_base_url: str = "https://mmg.whatsapp.net"
    concurrency: int = _bounded(8, 1)
    max_media_bytes: int = _bounded(2 * 1024 * 1024 * 1024, 1)
    length_margin: float = _bounded(0.05, 0)
    connect_timeout_s: float = _positive(5.0)
    read_timeout_s: float = _positive(30.0)
    total_timeout_s: float = _positive(900.0)
    # W-API's API and file links, WhatsApp's CDN, and Z-API's file host
    # (storage.z-api.io serves the decrypted links of its webhooks): README "ALLOWED_HOSTS".
    allowed_hosts: tuple[str, ...] = (
        "api.w-api.app",
        "*.whatsapp.net",
        "*.w-api.app",
        "*.z-api.io",
    )
    allow_private_addresses: bool = False
    fetch_order: tuple[str, ...] = ("wapi", "direct")

    def __post_init__(self) -> None:
        _check_bounds(self)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of mediaflow. Build with :meth:`from_env`; pass it down explicitly."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    downloader: DownloaderSettings = field(default_factory=DownloaderSettings)
    tenants_file: Path = REPO_ROOT / "deploy" / "tenants.toml"
    projection_db_url: str = f"sqlite:///{REPO_ROOT / '.stack' / 'projection.db'}"
    webhook_host: str = "127.0.0.1"
    webhook_port: int = _bounded(8080, 0, MAX_PORT)
    webhook_max_body_bytes: int = _bounded(1024 * 1024, 1)
    webhook_body_budget_bytes: int = _bounded(64 * 1024 * 1024, 1)
    webhook_max_connections: int = _bounded(1024, 1)
    webhook_body_timeout_s: float = _positive(10.0)
    webhook_delivery_timeout_s: float = _positive(10.0)
    webhook_linger_ms: float = _bounded(1.0, 0, MAX_LINGER_MS)
    webhook_batch_messages: int = _bounded(16, 1, MAX_BATCH_MESSAGES)
    api_host: str = "127.0.0.1"
    api_port: int = _bounded(8081, 0, MAX_PORT)
    api_token: Secret = field(default_factory=lambda: Secret(LOCAL_API_TOKEN))
    api_trusted_proxies: tuple[str, ...] = ()
    http_idle_timeout_s: float = _positive(75.0)
    instance_name: str = field(default_factory=socket.gethostname)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = _bounded(0, 0, MAX_PORT)
    batch_max_records: int = _bounded(500, 1)
    notifier_concurrency: int = _bounded(32, 1)
    callback_timeout_s: float = _positive(10.0)
    batch_max_interval_s: float = _positive(0.5)
    max_media_per_webhook: int = _bounded(10, 1)
    log_format: str = "auto"
    log_level: str = "info"

    def __post_init__(self) -> None:
        _check_bounds(self)
        if self.webhook_body_budget_bytes < self.webhook_max_body_bytes:
            raise ConfigError(
                f"{variable_name('', 'webhook_body_budget_bytes')}="
                f"{self.webhook_body_budget_bytes} must be at least "
                f"{variable_name('', 'webhook_max_body_bytes')} ({self.webhook_max_body_bytes})"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from defaults, the optional config file and the environment.

        Args:
            environ: the environment to read; ``os.environ`` when omitted.

        Raises:
            ConfigError: a value does not parse; the message names the variable.

        """
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        kafka_props: dict[str, str] = {}
        config_file = env.get(f"{PREFIX}CONFIG_FILE")
        if config_file:
            file_values = _read_file(Path(config_file))
            kafka_props.update(file_values.pop("kafka_properties", {}))
            values.update(file_values)
        for name, value in env.items():
            if name.startswith(KAFKA_PROP_PREFIX):
                kafka_props[name[len(KAFKA_PROP_PREFIX) :].lower().replace("_", ".")] = value
            elif name.startswith(PREFIX) and name != f"{PREFIX}CONFIG_FILE":
                values[name[len(PREFIX) :].lower()] = value
        return _build(values, kafka_props)


# Flat variable name -> (section, attribute). Sections: "" (Settings), kafka, s3, downloader.
_FIELDS: dict[str, tuple[str, str]] = {
    "kafka_bootstrap_servers": ("kafka", "bootstrap_servers"),
    "topic_prefix": ("kafka", "topic_prefix"),
    "topics_file": ("kafka", "topics_file"),
    "topics_profile": ("kafka", "topics_profile"),
    "kafka_client_id": ("kafka", "client_id"),
    "s3_endpoint_url": ("s3", "endpoint_url"),
    "s3_region": ("s3", "region"),
    "s3_bucket": ("s3", "bucket"),
    "s3_access_key": ("s3", "access_key"),
    "s3_secret_key": ("s3", "secret_key"),
    "s3_addressing_style": ("s3", "addressing_style"),
    "s3_multipart_threshold": ("s3", "multipart_threshold"),
    "s3_part_size": ("s3", "part_size"),
    "s3_presign_ttl_s": ("s3", "presign_ttl_s"),
    "wapi_base_url": ("downloader", "wapi_base_url"),
    "cdn_base_url": ("downloader", "cdn_base_url"),
    "download_concurrency": ("downloader", "concurrency"),
    "max_media_bytes": ("downloader", "max_media_bytes"),
    "length_margin": ("downloader", "length_margin"),
    "connect_timeout_s": ("downloader", "connect_timeout_s"),
    "read_timeout_s": ("downloader", "read_timeout_s"),
    "total_timeout_s": ("downloader", "total_timeout_s"),
    "allowed_hosts": ("downloader", "allowed_hosts"),
    "allow_private_addresses": ("downloader", "allow_private_addresses"),
    "fetch_order": ("downloader", "fetch_order"),
}
_TOP = {f.name for f in dataclasses.fields(Settings)} - {"kafka", "s3", "downloader"}
_SECTIONS = {"kafka": KafkaSettings, "s3": S3Settings, "downloader": DownloaderSettings}
_FLAT_NAME = {section_attr: name for name, section_attr in _FIELDS.items()}


def variable_name(section: str, attr: str) -> str:
    """The environment variable that sets ``attr`` of a section ("" for the top level).

    ``variable_name("s3", "part_size")`` is ``MEDIAFLOW_S3_PART_SIZE``.
    """
    return f"{PREFIX}{_FLAT_NAME.get((section, attr), attr).upper()}"


def property_variable(name: str) -> str:
    """The environment variable that passes librdkafka property ``name`` through.

    ``property_variable("sasl.mechanism")`` is ``MEDIAFLOW_KAFKA_PROP_SASL_MECHANISM``.
    """
    return f"{KAFKA_PROP_PREFIX}{name.upper().replace('.', '_')}"


def _check_bounds(settings: object) -> None:
    """Refuse a numeric setting outside its :class:`Bounds`, naming its variable.

    Raises:
        ConfigError: e.g. ``MEDIAFLOW_WEBHOOK_LINGER_MS=-1 must be at least 0``.

    """
    section = next((name for name, cls in _SECTIONS.items() if isinstance(settings, cls)), "")
    for spec in dataclasses.fields(settings):  # type: ignore[arg-type]
        bounds: Bounds | None = spec.metadata.get("bounds")
        if bounds is None:
            continue
        value = getattr(settings, spec.name)
        problem = bounds.problem(value)
        if problem is not None:
            raise ConfigError(f"{variable_name(section, spec.name)}={_number(value)} {problem}")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"MEDIAFLOW_CONFIG_FILE={path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"MEDIAFLOW_CONFIG_FILE={path} is not valid TOML: {exc}") from exc


def _build(values: dict[str, Any], kafka_props: dict[str, str]) -> Settings:
    sections: dict[str, dict[str, Any]] = {"kafka": {}, "s3": {}, "downloader": {}}
    top: dict[str, Any] = {}
    for name, raw in values.items():
        if name in _FIELDS:
            section, attr = _FIELDS[name]
            cls = _SECTIONS[section]
            sections[section][attr] = _coerce(cls, attr, raw, name)
        elif name in _TOP:
            top[name] = _coerce(Settings, name, raw, name)
        # Unknown MEDIAFLOW_* names are ignored: scripts use the prefix for their own knobs.
    sections["kafka"]["properties"] = kafka_props
    return Settings(
        kafka=KafkaSettings(**sections["kafka"]),
        s3=S3Settings(**sections["s3"]),
        downloader=DownloaderSettings(**sections["downloader"]),
        **top,
    )


def _coerce(cls: type, attr: str, raw: Any, name: str) -> Any:
    default = next(f for f in dataclasses.fields(cls) if f.name == attr)
    sample = (
        default.default if default.default is not dataclasses.MISSING else default.default_factory()  # type: ignore[misc]
    )
    variable = f"{PREFIX}{name.upper()}"
    try:
        if isinstance(sample, Secret):
            return Secret(str(raw))
        if isinstance(sample, bool):
            return _parse_bool(raw)
        if isinstance(sample, int):
            return int(raw)
        if isinstance(sample, float):
            return float(raw)
        if isinstance(sample, Path):
            return Path(raw)
        if isinstance(sample, tuple):
            items = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",")]
            kind = type(sample[0]) if sample else str
            return tuple(kind(item) for item in items if str(item) != "")
        optional = sample is None or "None" in str(default.type)
        return None if raw in ("", None) and optional else str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{variable}={raw!r} is not a valid {type(sample).__name__}") from exc


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


__all__ = [
    "LOCAL_API_TOKEN",
    "DownloaderSettings",
    "KafkaSettings",
    "S3Settings",
    "Secret",
    "Settings",
]
