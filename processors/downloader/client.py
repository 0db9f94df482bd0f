"""The guarded HTTP client: every request through the SSRF guard, redirects followed by hand.

Used by the fetchers and by ``mediaflow diagnose``, so whatever sends a
provider token or a media key sends it the same way. aiohttp never follows a
redirect itself (``allow_redirects=False``); :class:`GuardedClient` follows at
most :data:`~mediaflow.url_guard.MAX_REDIRECTS`, checking each hop with the URL policy, and
the session's resolver (:func:`guarded_session`) checks every address it
connects to.

Credentials never follow a redirect to another origin (scheme, host and port;
see :func:`next_hop`):

* a request made with ``same_origin_only`` (the W-API API call: its
  ``Authorization`` header holds the instance token and its JSON body the media
  key) is refused with :class:`~mediaflow.errors.BlockedUrl` when it is
  redirected to another origin. Stripping the token and the key would leave a
  request that cannot succeed anywhere, and sending them would hand them to
  whoever the provider's answer points at (a compromised or misconfigured
  provider, a hostile proxy). A redirect within the provider's own origin is
  followed as usual;
* any other request (file links, the WhatsApp CDN, plain links) follows a
  redirect to another origin without its credential headers
  (``Authorization``, ``Cookie``, ``Proxy-Authorization``), as browsers and
  httpx do; a body is never sent to another origin.

Method and body on a redirect follow what browsers, httpx and aiohttp do: 303,
and 301/302 after a POST, continue as a GET without a body; 307/308 repeat the
request as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mediaflow.errors import BlockedUrl, ErrorKind, ProviderUnavailable
from mediaflow.url_guard import (
    MAX_REDIRECTS,
    UrlPolicy,
    guarded_connector_kwargs,
)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower case, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True, slots=True)
class Hop:
    """One request to send: method, URL, headers and JSON body (``None``: no body)."""

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None


def next_hop(hop: Hop, status: int, target: str, *, same_origin_only: bool, where: str) -> Hop:
    """The request that follows ``hop`` answered ``status`` with a redirect to ``target``.

    Pure: ``target`` is already resolved against ``hop.url`` and checked by the policy.

    Args:
        hop: the request that was redirected.
        status: the redirect status (301, 302, 303, 307, 308).
        target: the absolute URL redirected to.
        same_origin_only: refuse any redirect to another origin.
        where: who redirected (for the message), e.g. ``W-API``.

    Raises:
        BlockedUrl: another origin, and the request may not leave its own, or
            would carry its body there.
    """
    as_get = status == 303 or (status in (301, 302) and hop.method == "POST")
    method, body = ("GET", None) if as_get else (hop.method, hop.json)
    if origin_of(target) == origin_of(hop.url):
        return Hop(method, target, hop.headers, body)
    host = origin_of(target)[1]
    if same_origin_only:
        raise BlockedUrl(
            f"{where} redirected its API call to another origin ({host}); refused: the call "
            "carries the instance token and the media key, which never leave its origin"
        )
    if body is not None:
        raise BlockedUrl(f"{where} redirected a request with a body to another origin ({host})")
    headers = {k: v for k, v in hop.headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    return Hop(method, target, headers, None)


class GuardedClient:
    """Sends requests through the SSRF guard and follows redirects by hand.

    Args:
        session: from :func:`guarded_session` (its resolver checks every address).
        policy: the URL policy.
        timeout: for each request.
    """

    def __init__(
        self, session: aiohttp.ClientSession, policy: UrlPolicy, timeout: aiohttp.ClientTimeout
    ) -> None:
        self._session = session
        self._policy = policy
        self._timeout = timeout

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        where: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        same_origin_only: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send ``method url``; yield the first answer that is not a redirect, whatever its status.

        Args:
            method: ``GET`` or ``POST``.
            url: where to send it.
            where: names the other side in error messages (``W-API``, ``WhatsApp CDN``).
            headers: request headers.
            params: query parameters of the first request (a redirect's
                ``Location`` is taken as it is).
            json: a JSON body.
            same_origin_only: refuse redirects to another origin (see the module docstring).

        Raises:
            BlockedUrl: a URL or a redirect is off limits, or more than
                :data:`~mediaflow.url_guard.MAX_REDIRECTS` redirects.
            ProviderUnavailable: the connection failed or timed out.
        """
        hop = Hop(method, url, dict(headers or {}), json)
        query = dict(params) if params else None
        for _ in range(MAX_REDIRECTS + 1):
            self._policy.check_url(hop.url)
            try:
                response = await self._session.request(
                    hop.method,
                    hop.url,
                    headers=dict(hop.headers),
                    params=query,
                    json=hop.json,
                    allow_redirects=False,
                    timeout=self._timeout,
                )
            except BlockedUrl:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise network_error(where, exc) from exc
            try:
                if response.status not in REDIRECTS:
                    yield response
                    return
                target = self._policy.redirect_target(
                    str(response.url), response.headers.get("Location")
                )
                hop = next_hop(
                    hop, response.status, target, same_origin_only=same_origin_only, where=where
                )
                query = None
            finally:
                response.release()
        raise BlockedUrl(f"{where} redirected more than {MAX_REDIRECTS} times")


def network_error(where: str, exc: BaseException) -> ProviderUnavailable:
    """The transient error for a failed connection or read (no URL in the message)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ProviderUnavailable(f"{where} timed out", kind=ErrorKind.TIMEOUT)
    return ProviderUnavailable(
        f"{where} connection failed: {type(exc).__name__}", kind=ErrorKind.CONNECTION
    )


def guarded_session(policy: UrlPolicy) -> aiohttp.ClientSession:
    """An aiohttp session whose connections go only where ``policy`` allows.

    No connection limit (the caller bounds its concurrency), no proxy from the
    environment, no DNS cache (see :func:`~mediaflow.url_guard.guarded_connector_kwargs`).
    """
    connector = aiohttp.TCPConnector(limit=0, **guarded_connector_kwargs(policy))
    return aiohttp.ClientSession(connector=connector)


__all__ = [
    "CREDENTIAL_HEADERS",
    "REDIRECTS",
    "GuardedClient",
    "Hop",
    "guarded_session",
    "network_error",
    "next_hop",
    "origin_of",
]
