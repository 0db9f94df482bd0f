"""The one error tree of mediaflow.

Routing decisions read the branch of an error, never its message::

    MediaflowError
    ├── TransientError            try again later (retry tier, or wait in place)
    │   ├── ProviderUnavailable   W-API / CDN 5xx, 429, timeouts, resets
    │   ├── StorageUnavailable    the S3 server is down, or refuses our credentials
    │   │                         or bucket (``cause``): never the media's fault,
    │   │                         the downloader waits for it, no dead letter
    │   └── BrokerUnavailable     Kafka unreachable or its local queue is full
    ├── PermanentError            dead-letter now, with a stable short ``kind``
    │   ├── UndecodableRecord     kind ``undecodable``
    │   ├── InvalidPayload        kind ``invalid_payload`` / ``missing_fields``
    │   ├── MediaExpired          kind ``expired`` (CDN 403/404/410)
    │   ├── IntegrityError        kinds ``enc_sha256_mismatch``, ``mac_mismatch``,
    │   │                         ``bad_padding``, ``sha256_mismatch``, ``length_mismatch``
    │   ├── BlockedUrl            kind ``blocked_url`` (SSRF guard)
    │   ├── MediaTooLarge         kind ``too_large``
    │   └── ProviderRejected      kind ``unauthorized`` / ``provider_error``
    │   (a webhook with more media than allowed is an InvalidPayload of kind
    │   ``too_many_media``; a record whose failure handling itself raised is
    │   dead-lettered with kind ``internal``, see mediaflow.kafka.handling)
    └── UsageError                a programming or configuration mistake: stop
        └── ConfigError           bad settings; the message says which variable

Every message is safe to log: it never contains a token, secret, key or URL
query string. Third-party errors are translated at the boundary with
``raise ... from exc`` so the cause is kept for debugging.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Stable short words that name why something failed (dead-letter headers, metrics)."""

    UNDECODABLE = "undecodable"
    INVALID_PAYLOAD = "invalid_payload"
    MISSING_FIELDS = "missing_fields"
    EXPIRED = "expired"
    ENC_SHA256_MISMATCH = "enc_sha256_mismatch"
    MAC_MISMATCH = "mac_mismatch"
    BAD_PADDING = "bad_padding"
    SHA256_MISMATCH = "sha256_mismatch"
    LENGTH_MISMATCH = "length_mismatch"
    BLOCKED_URL = "blocked_url"
    TOO_LARGE = "too_large"
    UNAUTHORIZED = "unauthorized"
    PROVIDER_ERROR = "provider_error"
    UNSUPPORTED = "unsupported"
    RETRIES_EXHAUSTED = "retries_exhausted"
    UNEXPECTED = "unexpected"
    INTERNAL = "internal"
    TOO_MANY_MEDIA = "too_many_media"
    # transient kinds (appear in MediaDownloadFailed and retry headers)
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CONNECTION = "connection"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    BROKER_UNAVAILABLE = "broker_unavailable"


class MediaflowError(Exception):
    """Root of every error mediaflow raises on purpose."""

    kind: ErrorKind = ErrorKind.UNEXPECTED

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    @property
    def message(self) -> str:
        """The human-readable, secret-free message."""
        return str(self.args[0]) if self.args else self.kind.value


class TransientError(MediaflowError):
    """Trying again later may succeed.

    Attributes:
        retry_after: seconds the other side asked us to wait (HTTP ``Retry-After``), if any.

    """

    kind = ErrorKind.CONNECTION

    def __init__(
        self, message: str, *, kind: ErrorKind | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, kind=kind)
        self.retry_after = retry_after


class ProviderUnavailable(TransientError):
    """The provider or CDN failed in a way that may pass (5xx, 429, timeout, reset)."""

    kind = ErrorKind.SERVER_ERROR


class StorageCause(StrEnum):
    """Why the storage cannot take anything (log lines, the ``cause`` metric label)."""

    UNREACHABLE = "unreachable"
    SERVER_ERROR = "server_error"
    CREDENTIALS = "credentials"
    ACCESS_DENIED = "access_denied"
    BUCKET_MISSING = "bucket_missing"

    @property
    def misconfigured(self) -> bool:
        """An operator must fix the settings or the bucket; waiting alone will not do."""
        return self in _MISCONFIGURED


_MISCONFIGURED = frozenset(
    {StorageCause.CREDENTIALS, StorageCause.ACCESS_DENIED, StorageCause.BUCKET_MISSING}
)


class StorageUnavailable(TransientError):
    """The storage cannot take anything right now. Not the media's fault.

    A refused credential or a missing bucket is a configuration mistake, but
    one that stops every media alike: like an outage, the downloader waits for
    it to be fixed instead of dead-lettering what is in flight. ``cause`` keeps
    the mistake visible and the message says what to fix.

    Attributes:
        cause: why (:class:`StorageCause`).
    """

    kind = ErrorKind.STORAGE_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        retry_after: float | None = None,
        cause: StorageCause = StorageCause.UNREACHABLE,
    ) -> None:
        super().__init__(message, kind=kind, retry_after=retry_after)
        self.cause = cause


class BrokerUnavailable(TransientError):
    """Kafka cannot take the record right now (unreachable, queue full, timed out)."""

    kind = ErrorKind.BROKER_UNAVAILABLE


class PermanentError(MediaflowError):
    """Retrying cannot help: the record goes to the dead-letter topic with ``kind``."""

    kind = ErrorKind.INVALID_PAYLOAD


class UndecodableRecord(PermanentError):
    """A Kafka record's bytes are not a record we can read."""

    kind = ErrorKind.UNDECODABLE


class InvalidPayload(PermanentError):
    """A provider payload is not what the provider documents."""

    kind = ErrorKind.INVALID_PAYLOAD


class MediaExpired(PermanentError):
    """The CDN says the media is gone (403/404/410); it must be re-requested upstream."""

    kind = ErrorKind.EXPIRED


class IntegrityError(PermanentError):
    """Downloaded bytes fail a hash, MAC, padding or length check."""

    kind = ErrorKind.MAC_MISMATCH


class BlockedUrl(PermanentError):
    """An outgoing URL points somewhere the safety policy forbids."""

    kind = ErrorKind.BLOCKED_URL


class MediaTooLarge(PermanentError):
    """A media is bigger than its declared length allows or than the absolute maximum."""

    kind = ErrorKind.TOO_LARGE


class ProviderRejected(PermanentError):
    """The provider refused the request for good (401/403, or ``"error": true``)."""

    kind = ErrorKind.PROVIDER_ERROR


class UsageError(MediaflowError):
    """mediaflow was used wrongly; fix the code or the configuration."""


class ConfigError(UsageError):
    """A setting is missing or invalid; the message names the variable to fix."""


EXIT_CONFIG = 78
"""The exit code of a command stopped by a :class:`ConfigError` (``EX_CONFIG`` in sysexits.h).

A supervisor does not restart such a process: the same configuration would be
refused again (systemd: ``RestartPreventExitStatus=78``).
"""


__all__ = [
    "BlockedUrl",
    "BrokerUnavailable",
    "EXIT_CONFIG",
    "ConfigError",
    "ErrorKind",
    "IntegrityError",
    "InvalidPayload",
    "MediaExpired",
    "MediaTooLarge",
    "MediaflowError",
    "PermanentError",
    "ProviderRejected",
    "ProviderUnavailable",
    "StorageCause",
    "StorageUnavailable",
    "TransientError",
    "UndecodableRecord",
    "UsageError",
]
