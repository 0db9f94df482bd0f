from datetime import UTC, datetime

import pytest

from mediaflow.config import Secret
from mediaflow.errors import (
    ErrorKind,
    InvalidPayload,
    MediaExpired,
    ProviderRejected,
    ProviderUnavailable,
)
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource, MediaType
from mediaflow.processors.downloader.fetchers import fetch_paths, status_error
from mediaflow.tenants import Tenant


def request(**source: object) -> MediaDownloadRequested:
    info = MediaInfo(
        provider="wapi",
        client_id="1",
        instance_id="I",
        message_id="M",
        chat_id="C",
        media_type=MediaType.IMAGE,
    )
    return MediaDownloadRequested(
        event_id="e",
        media_id="m",
        occurred_at=datetime.now(UTC),
        stage="detector",
        source_event_id="s",
        info=info,
        source=MediaSource(**source),  # type: ignore[arg-type]
    )


def tenant(order: tuple[str, ...] | None = None, token: str = "tok-123456") -> Tenant:
    return Tenant("I", "1", "wapi", Secret(""), Secret(token), order)


def test_server_errors_are_transient() -> None:
    assert isinstance(status_error(503, "wapi"), ProviderUnavailable)
    assert isinstance(status_error(500, "cdn"), ProviderUnavailable)


def test_rate_limit_carries_retry_after() -> None:
    error = status_error(429, "wapi", "7")
    assert isinstance(error, ProviderUnavailable) and error.retry_after == 7.0
    assert error.kind is ErrorKind.RATE_LIMITED


def test_unavailable_carries_retry_after_and_a_hostile_one_is_dropped() -> None:
    # RFC 9110 gives Retry-After to 503 as to 429: a provider in maintenance says when.
    assert status_error(503, "cdn", "120").retry_after == 120.0
    for hostile in ("1e12", "inf", "-5", "soon"):
        assert status_error(503, "wapi", hostile).retry_after is None
    assert status_error(500, "wapi", "120").retry_after is None  # meaningless on a 500


def test_wapi_auth_failures_are_permanent_unauthorized() -> None:
    error = status_error(401, "wapi")
    assert isinstance(error, ProviderRejected) and error.kind is ErrorKind.UNAUTHORIZED


@pytest.mark.parametrize("status", [403, 404, 410])
def test_cdn_gone_statuses_mean_expired(status: int) -> None:
    assert isinstance(status_error(status, "cdn"), MediaExpired)


def test_success_is_no_error() -> None:
    assert status_error(200, "cdn") is None


def test_default_order_tries_wapi_then_direct() -> None:
    req = request(media_key="k", direct_path="/v/x.enc")
    assert fetch_paths(req, tenant(), ("wapi", "direct")) == ["wapi", "direct"]


def test_tenant_order_wins_over_the_default() -> None:
    req = request(media_key="k", direct_path="/v/x.enc")
    assert fetch_paths(req, tenant(("direct", "wapi")), ("wapi", "direct")) == ["direct", "wapi"]


def test_wapi_is_skipped_without_a_token() -> None:
    req = request(media_key="k", direct_path="/v/x.enc")
    assert fetch_paths(req, tenant(token=""), ("wapi", "direct")) == ["direct"]


def test_media_without_a_key_is_fetched_by_plain_link() -> None:
    req = request(url="https://files.example/x.jpg")
    assert fetch_paths(req, None, ("wapi", "direct")) == ["link"]


def test_media_with_nothing_to_fetch_is_invalid() -> None:
    with pytest.raises(InvalidPayload) as info:
        fetch_paths(request(), tenant(), ("wapi", "direct"))
    assert info.value.kind is ErrorKind.MISSING_FIELDS
