"""Failed dashboard logins, limited per client address: a token bucket each, bounded memory.

Each address may fail :data:`BURST` logins in a row, then one more every
:data:`REFILL_S` seconds. While its bucket is empty, every login from that
address is answered 429 with ``Retry-After``, a right token's too (otherwise
the limit would not slow guessing down). A successful login takes nothing
from the bucket and waits for nothing.

IPv6 addresses are counted per /64, the block one host usually holds. At
most :data:`MAX_ADDRESSES` buckets are kept; the one that failed least
recently is forgotten first. The buckets live in one process: N copies of
the API allow N times the rate.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

BURST = 10
REFILL_S = 30.0
MAX_ADDRESSES = 10_000


class LoginThrottle:
    """How many failed logins each client address has left, refilled with time."""

    def __init__(
        self,
        *,
        burst: int = BURST,
        refill_s: float = REFILL_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._refill_s = refill_s
        self._max_addresses = max_addresses
        self._clock = clock
        # key -> (failures left, when counted); insertion order is failure order.
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, address: str | None) -> int | None:
        """Seconds before ``address`` may try to log in again; ``None``: it may now."""
        left = self._left(_key(address))
        # Rounded first: 10.000000000000002 s is 10 s, not 11.
        return None if left >= 1 else math.ceil(round((1 - left) * self._refill_s, 3))

    def failed(self, address: str | None) -> None:
        """Count a failed login of ``address``."""
        key = _key(address)
        left = self._left(key)
        self._buckets.pop(key, None)  # re-inserted last: the most recent failure
        self._buckets[key] = (max(0.0, left - 1), self._clock())
        if len(self._buckets) > self._max_addresses:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        """How many addresses are remembered."""
        return len(self._buckets)

    def _left(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self._burst)
        left, at = bucket
        return min(float(self._burst), left + (self._clock() - at) / self._refill_s)


def _key(address: str | None) -> str:
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"  # not an IP (a Unix socket): one bucket per value
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


__all__ = ["BURST", "MAX_ADDRESSES", "REFILL_S", "LoginThrottle"]
