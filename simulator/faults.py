"""What the fake W-API and CDN do wrong, and when.

:class:`Faults` is deliberately mutable: a test changes ``error_rate`` or adds
an expired media while a run is in progress, and the next request sees it.
Every random choice comes from one seeded generator, so a run with the same
seed and the same request order makes the same choices.

``decide(target, media_id)`` is the pure-ish policy (it only consumes the RNG
and scripts); the servers turn the :class:`Decision` into an HTTP answer.
Precedence: a script step for that media, then expiry, then the random
faults (hang, then error; on W-API also a provider error, then a redirect),
then success.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import deque
from collections.abc import Iterable
from enum import StrEnum

Step = int | str
"""One scripted answer:

* an HTTP status: 200 behaves; 301/302/303/307/308 redirect to
  ``Faults.redirect_to`` (the request's path and query appended); on the
  file hosts (``cdn``, ``files``) 403/404/410 say the media is gone; any other
  status is answered as it is (W-API 401/403 included);
* ``"hang"``: held open, never answered;
* ``"error"`` (W-API only): ``faults.wapi_error_status`` with ``{"error": true}``;
* ``"no_link"`` (W-API only): ``{"error": false}`` without a ``fileLink``;
* ``"corrupt"`` (file hosts): the body with one byte flipped.
"""

REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""Statuses a scripted step answers as a redirect to ``Faults.redirect_to``."""

_WORDS = {"hang", "error", "no_link", "corrupt"}

TARGETS = ("wapi", "cdn", "files")
"""Endpoints faults can apply to: W-API download-media, the CDN, W-API's file links."""


class Outcome(StrEnum):
    """What a fake endpoint does with one request."""

    OK = "ok"
    ERROR = "error"
    HANG = "hang"
    EXPIRED = "expired"
    PROVIDER_ERROR = "provider_error"
    CORRUPT = "corrupt"
    TRUNCATE = "truncate"
    REDIRECT = "redirect"
    NO_LINK = "no_link"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The answer chosen for one request.

    ``status`` is the HTTP status for ``ERROR``, ``EXPIRED`` and ``REDIRECT``;
    ``retry_after`` the ``Retry-After`` header value of an ``ERROR`` (or
    ``None``); ``delay_s`` the latency to add before answering; ``location``
    the base URL a ``REDIRECT`` points at; ``message`` the ``message`` of a
    ``PROVIDER_ERROR`` answer (``None``: the usual one).
    """

    outcome: Outcome
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    location: str | None = None
    message: str | None = None


@dataclasses.dataclass
class Faults:
    """Fault settings shared by the fake servers; change them at any time.

    Attributes:
        error_rate: probability that a request gets an HTTP error.
        status_mix: error status -> weight (500/502/503/429 by default).
        retry_after_s: ``Retry-After`` seconds sent with a 429.
        retry_after_values: when not empty, the ``Retry-After`` of every 429
            and 503 is one of these header values, picked at random (a broken
            provider's: ``"1e12"``, ``"inf"``, a date in the year 9999...).
        latency_s: fixed latency added to every answer.
        jitter_s: extra uniform random latency in ``[0, jitter_s]``.
        hang_rate: probability that a request is held open and never answered
            (until ``hang_s`` passes or the client gives up).
        hang_s: the longest a hanging request is held.
        expired: media (CDN ids) that have expired: the CDN answers
            ``expired_status``, W-API answers an error body.
        expired_status: 403, 404 or 410.
        corrupt: media whose ``.enc`` is served with one byte flipped.
        truncate: media whose ``.enc`` stream stops halfway (connection closed).
        throttle: media whose ``.enc`` the CDN streams no faster than this many
            bytes per second (a slow CDN; long enough to catch an upload mid-way).
        targets: which endpoints the random faults apply to.
        wapi_error_status: HTTP status of W-API ``{"error": true}`` answers.
        provider_error_rate: probability that a W-API download-media call
            (a random-fault target) is answered ``{"error": true}``.
        provider_error_message: the ``message`` of those answers (``None``:
            the usual one), e.g. one holding a lone surrogate.
        redirect_to: base URL (scheme, host, port) redirects point at, e.g. a
            trap server on another origin.
        redirect_rate: probability that a W-API download-media call (a
            random-fault target) is redirected (302 or 307) to ``redirect_to``.
        seed: seeds the generator behind every random choice.

    """

    error_rate: float = 0.0
    status_mix: dict[int, float] = dataclasses.field(
        default_factory=lambda: {500: 0.4, 502: 0.2, 503: 0.2, 429: 0.2}
    )
    retry_after_s: int = 1
    retry_after_values: tuple[str, ...] = ()
    latency_s: float = 0.0
    jitter_s: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 300.0
    expired: set[str] = dataclasses.field(default_factory=set)
    expired_status: int = 410
    corrupt: set[str] = dataclasses.field(default_factory=set)
    truncate: set[str] = dataclasses.field(default_factory=set)
    throttle: dict[str, float] = dataclasses.field(default_factory=dict)
    targets: frozenset[str] = frozenset({"wapi", "cdn"})
    wapi_error_status: int = 200
    provider_error_rate: float = 0.0
    provider_error_message: str | None = None
    redirect_to: str | None = None
    redirect_rate: float = 0.0
    seed: int = 0
    _rng: random.Random = dataclasses.field(init=False, repr=False)
    _scripts: dict[tuple[str, str], deque[Step]] = dataclasses.field(
        init=False, repr=False, default_factory=dict
    )
    _lock: threading.Lock = dataclasses.field(
        init=False, repr=False, default_factory=threading.Lock
    )

    def __post_init__(self) -> None:
        if self.redirect_rate and not self.redirect_to:
            raise ValueError("redirect_rate needs redirect_to")
        self._rng = random.Random(self.seed)

    def script(self, target: str, media_id: str, steps: Iterable[Step]) -> None:
        """Answer the next requests for ``media_id`` on ``target`` with ``steps``, in order.

        ``faults.script("wapi", media.cdn_id, [500, 200])``: the first W-API call
        for that media fails with 500, the second succeeds; after the script
        runs out the usual rules apply again.

        Raises:
            ValueError: unknown target or step, or a redirect without ``redirect_to``.

        """
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")
        steps = list(steps)
        for step in steps:
            if isinstance(step, str) and step not in _WORDS:
                raise ValueError(f"unknown step {step!r}; expected a status or one of {_WORDS}")
            if step in REDIRECTS and not self.redirect_to:
                raise ValueError(f"step {step} redirects: set redirect_to first")
        with self._lock:
            self._scripts.setdefault((target, media_id), deque()).extend(steps)

    def decide(self, target: str, media_id: str | None) -> Decision:
        """Choose the answer for one request to ``target`` about ``media_id``."""
        with self._lock:
            delay = self.latency_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
            script = self._scripts.get((target, media_id or ""))
            if script:
                return self._scripted(target, script.popleft(), delay)
            if media_id in self.expired:
                if target == "wapi":
                    return Decision(Outcome.PROVIDER_ERROR, self.wapi_error_status, delay_s=delay)
                return Decision(Outcome.EXPIRED, self.expired_status, delay_s=delay)
            if target == "cdn" and media_id in self.corrupt:
                return Decision(Outcome.CORRUPT, delay_s=delay)
            if target == "cdn" and media_id in self.truncate:
                return Decision(Outcome.TRUNCATE, delay_s=delay)
            if target in self.targets:
                if self.hang_rate and self._rng.random() < self.hang_rate:
                    return Decision(Outcome.HANG, delay_s=delay)
                if self.error_rate and self._rng.random() < self.error_rate:
                    return self._error(self._pick_status(), delay)
                if target == "wapi":
                    return self._wapi_fault(delay)
            return Decision(Outcome.OK, delay_s=delay)

    def _wapi_fault(self, delay: float) -> Decision:
        """W-API's own random faults: an ``{"error": true}`` answer, or a redirect."""
        if self.provider_error_rate and self._rng.random() < self.provider_error_rate:
            return Decision(
                Outcome.PROVIDER_ERROR,
                self.wapi_error_status,
                delay_s=delay,
                message=self.provider_error_message,
            )
        if self.redirect_rate and self._rng.random() < self.redirect_rate:
            status = self._rng.choice((302, 307))
            return Decision(Outcome.REDIRECT, status, delay_s=delay, location=self.redirect_to)
        return Decision(Outcome.OK, delay_s=delay)

    def _scripted(self, target: str, step: Step, delay: float) -> Decision:
        if step == "hang":
            return Decision(Outcome.HANG, delay_s=delay)
        if step == "error":
            return Decision(Outcome.PROVIDER_ERROR, self.wapi_error_status, delay_s=delay)
        if step == "no_link":
            return Decision(Outcome.NO_LINK, delay_s=delay)
        if step == "corrupt":
            return Decision(Outcome.CORRUPT, delay_s=delay)
        status = int(step)
        if status == 200:
            return Decision(Outcome.OK, delay_s=delay)
        if status in REDIRECTS:
            return Decision(Outcome.REDIRECT, status, delay_s=delay, location=self.redirect_to)
        if target != "wapi" and status in (403, 404, 410):
            return Decision(Outcome.EXPIRED, status, delay_s=delay)
        return self._error(status, delay)

    def _error(self, status: int, delay: float) -> Decision:
        retry_after = None
        if self.retry_after_values and status in (429, 503):
            retry_after = self._rng.choice(self.retry_after_values)
        elif status == 429:
            retry_after = str(self.retry_after_s)
        return Decision(Outcome.ERROR, status, retry_after=retry_after, delay_s=delay)

    def _pick_status(self) -> int:
        statuses = list(self.status_mix)
        return self._rng.choices(statuses, weights=[self.status_mix[s] for s in statuses])[0]


__all__ = ["REDIRECTS", "TARGETS", "Decision", "Faults", "Outcome", "Step"]
