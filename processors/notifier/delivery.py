"""Send one signed notification to its callback, and say what its answer means.

Signed as the Standard Webhooks specification says (``standardwebhooks``):
``webhook-id`` (the event's id), ``webhook-timestamp`` (seconds, at this
attempt), ``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>``.

Answers:

* 2xx: delivered;
* 3xx: never followed (the signed body and its headers go only to the
  declared URL): :class:`~mediaflow.errors.BlockedUrl`, dead-lettered;
* 410 Gone: the endpoint says it is gone for good: dead-lettered;
* anything else (429, 5xx, 4xx, a refused or timed-out connection): a
  transient failure, retried through the tiers, with the server's
  ``Retry-After`` (capped by the retry policy at its longest tier).

Every request goes through the outgoing guard: the URL is checked, and the
session's resolver refuses private, loopback and link-local addresses unless
the callback's own policy allows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import aiohttp

from mediaflow.errors import (
    BlockedUrl,
    ErrorKind,
    MediaflowError,
    ProviderRejected,
    ProviderUnavailable,
)
from mediaflow.events import utcnow
from mediaflow.processors.notifier.callbacks import Callback
from mediaflow.processors.notifier.payload import Notification
from mediaflow.retry_after import retry_after_seconds
from mediaflow.url_guard import UrlPolicy, guarded_connector_kwargs

USER_AGENT = "mediaflow-notifier"


class Sender:
    """Posts notifications through two guarded sessions: strict, and private-allowing.

    Args:
        strict: its resolver refuses private addresses (unless allowed for all).
        private: its resolver allows them, for callbacks declared ``callback_private``.
        timeout_s: for the whole request, answer included.
        clock: wall clock for ``webhook-timestamp``.
    """

    def __init__(
        self,
        strict: aiohttp.ClientSession,
        private: aiohttp.ClientSession,
        *,
        timeout_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._strict = strict
        self._private = private
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock

    async def post(self, callback: Callback, note: Notification) -> int:
        """Deliver ``note`` to ``callback``; return the 2xx status it answered.

        Raises:
            BlockedUrl: the URL or an address it resolves to is off limits, or it redirected.
            ProviderRejected: the endpoint answered 410 Gone.
            ProviderUnavailable: any other failure (transient).
        """
        callback.policy.check_url(callback.url)
        session = self._private if callback.policy.allow_private else self._strict
        now = self._clock()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": note.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": callback.signer().sign(note.webhook_id, now, note.body),
        }
        where = f"callback of {callback.owner} at {callback.host}"
        try:
            async with session.post(
                callback.url,
                data=note.body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except BlockedUrl:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _network_error(where, exc) from exc
        failure = answer_error(where, status, retry_after)
        if failure is not None:
            raise failure
        return status


def answer_error(where: str, status: int, retry_after: str | None) -> MediaflowError | None:
    """Translate a callback's HTTP status into the error tree; ``None`` for a 2xx."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return BlockedUrl(
            f"{where} redirected ({status}); a signed notification is never sent on to "
            "another address: set callback_url to the final one"
        )
    if status == 410:
        return ProviderRejected(f"{where} answered 410 Gone: the endpoint is gone for good")
    kind = ErrorKind.RATE_LIMITED if status == 429 else ErrorKind.SERVER_ERROR
    return ProviderUnavailable(
        f"{where} answered {status}", kind=kind, retry_after=retry_after_seconds(retry_after)
    )


def _network_error(where: str, exc: BaseException) -> ProviderUnavailable:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ProviderUnavailable(f"{where} timed out", kind=ErrorKind.TIMEOUT)
    return ProviderUnavailable(
        f"{where} connection failed: {type(exc).__name__}", kind=ErrorKind.CONNECTION
    )


def guarded_sessions(allow_private: bool) -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
    """The strict session (private addresses as ``allow_private`` says) and the permissive one."""
    return tuple(  # type: ignore[return-value]
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, **guarded_connector_kwargs(UrlPolicy((), private))
            )
        )
        for private in (allow_private, True)
    )


__all__ = ["USER_AGENT", "Sender", "answer_error", "guarded_sessions"]
