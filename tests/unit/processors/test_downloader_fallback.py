"""The end of an attempt whose every fetch path failed: retry while a path may still work."""

from __future__ import annotations

from mediaflow.errors import (
    ErrorKind,
    IntegrityError,
    MediaExpired,
    ProviderRejected,
    ProviderUnavailable,
)
from mediaflow.processors.downloader.fallback import PathFailure, verdict

WAPI_DOWN = PathFailure("wapi", ProviderUnavailable("W-API answered 503", retry_after=7.0))
WAPI_REFUSED = PathFailure(
    "wapi", ProviderRejected("W-API refused the instance token (401)", kind=ErrorKind.UNAUTHORIZED)
)
CDN_GONE = PathFailure("direct", MediaExpired("WhatsApp CDN answered 410"))
CDN_DOWN = PathFailure("direct", ProviderUnavailable("WhatsApp CDN timed out"))
FILE_TAMPERED = PathFailure(
    "wapi", IntegrityError("SHA-256 does not match", kind=ErrorKind.SHA256_MISMATCH)
)


def test_a_single_path_failure_is_the_attempts_error_as_it_is() -> None:
    assert verdict([CDN_GONE], last_attempt=False) is CDN_GONE.error


def test_gone_on_the_cdn_after_a_transient_wapi_failure_is_retried() -> None:
    error = verdict([WAPI_DOWN, CDN_GONE], last_attempt=False)
    assert isinstance(error, ProviderUnavailable) and error.retry_after == 7.0
    assert error.message == "wapi: W-API answered 503; direct: WhatsApp CDN answered 410"


def test_on_the_last_attempt_the_permanent_failure_is_final() -> None:
    error = verdict([WAPI_DOWN, CDN_GONE], last_attempt=True)
    assert isinstance(error, MediaExpired) and error.kind is ErrorKind.EXPIRED
    assert "wapi: W-API answered 503" in error.message


def test_every_path_transient_on_the_last_attempt_stays_transient() -> None:
    error = verdict([WAPI_DOWN, CDN_DOWN], last_attempt=True)
    assert isinstance(error, ProviderUnavailable) and error.retry_after == 7.0


def test_when_every_path_refused_the_last_ones_kind_is_the_dead_letters() -> None:
    assert verdict([WAPI_REFUSED, CDN_GONE], last_attempt=False).kind is ErrorKind.EXPIRED
    assert verdict([FILE_TAMPERED, CDN_GONE], last_attempt=False).kind is ErrorKind.EXPIRED
    assert verdict([CDN_GONE, FILE_TAMPERED], last_attempt=False).kind is (
        ErrorKind.SHA256_MISMATCH
    )


def test_the_paths_own_errors_are_left_untouched() -> None:
    verdict([WAPI_DOWN, CDN_GONE], last_attempt=True)
    assert WAPI_DOWN.error.message == "W-API answered 503"
    assert CDN_GONE.error.message == "WhatsApp CDN answered 410"
