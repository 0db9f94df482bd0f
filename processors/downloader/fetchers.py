"""The ways to fetch a media's bytes: W-API, the WhatsApp CDN (direct), a plain link.

Each path opens a :class:`Source`: an async stream of body chunks plus whether
they are WhatsApp-encrypted. HTTP outcomes are translated into the error tree
here, once (see :func:`status_error`):

* 5xx, 408, 429 (``Retry-After`` honoured), timeouts, resets ->
  :class:`ProviderUnavailable`;
* W-API 401/403 -> :class:`ProviderRejected` ``unauthorized``; W-API
  ``"error": true`` or another 4xx -> ``provider_error``;
* CDN or link 403/404/410 -> :class:`MediaExpired`.

Whatever a path fails with, the stage tries the next path of the attempt;
:mod:`.fallback` decides what the attempt ends with when all failed.

Every request goes through the guarded client (:mod:`.client`): the SSRF
guard checks each hop, redirects are followed by hand, and the W-API call
(token in a header, media key in the body) never follows a redirect to
another origin. No token, media key or URL query string ever appears in an
error message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mediaflow.config import DownloaderSettings
from mediaflow.errors import (
    ErrorKind,
    InvalidPayload,
    MediaExpired,
    MediaflowError,
    ProviderRejected,
    ProviderUnavailable,
)
from mediaflow.events import MediaDownloadRequested
from mediaflow.processors.downloader.client import GuardedClient, network_error
from mediaflow.retry_after import retry_after_seconds
from mediaflow.tenants import Tenant
from mediaflow.url_guard import UrlPolicy

CHUNK_SIZE = 1024 * 1024
WHATSAPP_ORIGIN = "https://web.whatsapp.com"


@dataclass(frozen=True, slots=True)
class Source:
    """An open response body.

    Attributes:
        path: ``wapi``, ``direct`` or ``link``.
        chunks: the body, in chunks of at most :data:`CHUNK_SIZE`.
        encrypted: the bytes are a WhatsApp ``.enc`` file (decrypt them).
        content_length: the response's ``Content-Length``, if any.
    """

    path: str
    chunks: AsyncIterator[bytes]
    encrypted: bool
    content_length: int | None


def status_error(status: int, origin: str, retry_after: str | None = None) -> MediaflowError | None:
    """Translate an HTTP status into the error tree; ``None`` for success.

    Args:
        status: the HTTP status.
        origin: ``wapi`` (the provider API), ``cdn`` or ``link`` (file hosts).
        retry_after: the ``Retry-After`` header, if any.
    """
    if 200 <= status < 300:
        return None
    where = {"wapi": "W-API", "cdn": "WhatsApp CDN", "link": "media link"}.get(origin, origin)
    if status == 429:
        return ProviderUnavailable(
            f"{where} rate-limited us (429)",
            kind=ErrorKind.RATE_LIMITED,
            retry_after=retry_after_seconds(retry_after),
        )
    if status >= 500 or status == 408:
        # RFC 9110 gives Retry-After meaning on 503 (and 429): the host says when it is back.
        return ProviderUnavailable(
            f"{where} answered {status}",
            kind=ErrorKind.SERVER_ERROR,
            retry_after=retry_after_seconds(retry_after) if status == 503 else None,
        )
    if origin == "wapi" and status in (401, 403):
        return ProviderRejected(
            f"W-API refused the instance token ({status}); check the tenant's wapi_token",
            kind=ErrorKind.UNAUTHORIZED,
        )
    if origin != "wapi" and status in (403, 404, 410):
        return MediaExpired(
            f"{where} answered {status}: the media expired or was removed; "
            "it must be re-requested from the provider"
        )
    return ProviderRejected(f"{where} answered {status}", kind=ErrorKind.PROVIDER_ERROR)


def fetch_paths(
    request: MediaDownloadRequested, tenant: Tenant | None, default_order: Sequence[str]
) -> list[str]:
    """The paths to try for a media, in order, keeping only those that can work.

    ``wapi`` needs the tenant's token, the media key and a direct path or URL;
    ``direct`` needs the media key and a direct path or URL; ``link`` needs a
    URL and no media key (already-decrypted files, e.g. Z-API).

    Raises:
        InvalidPayload: (``missing_fields``) no path can fetch this media.
    """
    source = request.source
    locatable = bool(source.direct_path or source.url)
    usable = {
        "wapi": bool(tenant and tenant.wapi_token and source.media_key and locatable),
        "direct": bool(source.media_key and locatable),
        "link": bool(source.url and not source.media_key),
    }
    order = (tenant.fetch_order if tenant and tenant.fetch_order else None) or default_order
    paths = [p for p in order if usable.get(p)]
    if not paths:
        # A media without a key can only come through a plain link, whatever the order says.
        paths = [p for p in ("direct", "link") if usable[p]]
    if not paths:
        raise InvalidPayload(
            "the request has no way to fetch the media (no media key with a path, no link, "
            "or no W-API token for the instance)",
            kind=ErrorKind.MISSING_FIELDS,
        )
    return paths


class Fetcher:
    """Opens media bodies over HTTP through the SSRF guard.

    Args:
        session: an aiohttp session whose connector uses the guarded resolver
            (:func:`~.client.guarded_session`).
        policy: the URL policy.
        settings: base URLs and timeouts.
    """

    def __init__(
        self, session: aiohttp.ClientSession, policy: UrlPolicy, settings: DownloaderSettings
    ) -> None:
        self._settings = settings
        self._client = GuardedClient(
            session,
            policy,
            aiohttp.ClientTimeout(
                total=settings.total_timeout_s,
                connect=settings.connect_timeout_s,
                sock_read=settings.read_timeout_s,
            ),
        )

    @asynccontextmanager
    async def open(
        self, path: str, request: MediaDownloadRequested, tenant: Tenant | None
    ) -> AsyncIterator[Source]:
        """Open the body of ``request``'s media through ``path``.

        Raises:
            ProviderUnavailable: transient HTTP or network failure.
            ProviderRejected: the provider refused for good.
            MediaExpired: the file host says the media is gone.
            BlockedUrl: a URL or redirect is off limits.
        """
        if path == "wapi":
            assert tenant is not None  # guaranteed by fetch_paths
            link = await self._wapi_link(request, tenant)
            async with self._get(link, origin="wapi") as response:
                yield self._source("wapi", response, encrypted=False)
        elif path == "direct":
            async with self._get(
                self._cdn_url(request), origin="cdn", headers={"Origin": WHATSAPP_ORIGIN}
            ) as response:
                yield self._source("direct", response, encrypted=True)
        elif path == "link":
            async with self._get(request.source.url or "", origin="link") as response:
                yield self._source("link", response, encrypted=False)
        else:
            raise InvalidPayload(f"unknown fetch path {path!r}", kind=ErrorKind.UNSUPPORTED)

    def _cdn_url(self, request: MediaDownloadRequested) -> str:
        source = request.source
        if source.direct_path:
            # The configured CDN base wins over the URL in the payload, so a
            # deployment (or the test stack) decides which CDN host is used.
            return self._settings.cdn_base_url.rstrip("/") + "/" + source.direct_path.lstrip("/")
        return source.url or ""

    async def _wapi_link(self, request: MediaDownloadRequested, tenant: Tenant) -> str:
        url = f"{self._settings.wapi_base_url.rstrip('/')}/v1/message/download-media"
        body = {
            "mediaKey": request.source.media_key,
            "directPath": request.source.direct_path or _path_of(request.source.url),
            "type": request.info.media_type.value,
            "mimetype": request.info.mimetype,
        }
        headers = {"Authorization": f"Bearer {tenant.wapi_token.reveal()}"}
        async with self._client.request(
            "POST",
            url,
            where="W-API",
            headers=headers,
            params={"instanceId": request.info.instance_id},
            json=body,
            same_origin_only=True,
        ) as response:
            _raise_for_status(response, "wapi")
            try:
                answer: Any = await response.json(content_type=None)
            except (ValueError, aiohttp.ClientPayloadError) as exc:
                raise ProviderUnavailable("W-API answered with a body that is not JSON") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise network_error("W-API", exc) from exc
        if not isinstance(answer, dict) or answer.get("error"):
            detail = str(answer.get("message", ""))[:200] if isinstance(answer, dict) else ""
            raise ProviderRejected(
                f"W-API could not provide the media: {detail or 'error'}",
                kind=ErrorKind.PROVIDER_ERROR,
            )
        link = answer.get("fileLink")
        if not isinstance(link, str) or not link:
            raise ProviderRejected(
                "W-API answered without a fileLink", kind=ErrorKind.PROVIDER_ERROR
            )
        return link

    @asynccontextmanager
    async def _get(
        self, url: str, *, origin: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        where = {"wapi": "W-API", "cdn": "WhatsApp CDN"}.get(origin, "media link")
        async with self._client.request("GET", url, where=where, headers=headers) as response:
            _raise_for_status(response, origin)
            yield response

    @staticmethod
    def _source(path: str, response: aiohttp.ClientResponse, *, encrypted: bool) -> Source:
        where = {"wapi": "W-API file", "direct": "WhatsApp CDN"}.get(path, "media link")
        return Source(path, _chunks(response, where), encrypted, response.content_length)


def _raise_for_status(response: aiohttp.ClientResponse, origin: str) -> None:
    error = status_error(response.status, origin, response.headers.get("Retry-After"))
    if error is not None:
        raise error


async def _chunks(response: aiohttp.ClientResponse, where: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            yield chunk
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise network_error(where, exc) from exc


def _path_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


__all__ = ["CHUNK_SIZE", "Fetcher", "Source", "fetch_paths", "status_error"]
