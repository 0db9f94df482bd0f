"""What one attempt ends with when every fetch path failed. Pure.

An attempt tries the request's paths in order (:func:`~.fetchers.fetch_paths`:
``wapi`` then ``direct`` by default) and any failure of one path moves on to
the next: the paths are independent sources of the same bytes, so W-API
refusing the token (401/403), answering ``"error": true`` or without a
``fileLink``, a file link that is gone (404/410) or serves bytes that fail
verification all leave the WhatsApp CDN worth trying, and the other way round
(providers can re-request from the phone a media the CDN has dropped). Only
the storage stops an attempt at once (it is no path's fault: the stage waits
for it).

When every path failed, :func:`verdict` picks the error the attempt raises,
which the retry policy then routes:

1. a path that failed transiently may work on a later attempt, so while
   attempts remain, the attempt is transient (a retry tier), even when another
   path said the media is gone: a CDN 404 right after a W-API 503 is not final;
2. otherwise (no transient failure, or the last attempt) the permanent
   failure of the last path that failed permanently is final: its kind is the
   dead letter's (``expired`` when the CDN, tried last by default, says so);
3. when every path failed transiently on the last attempt, the transient
   error goes to the policy, which gives up with ``retries_exhausted``.

The message names every path's failure, in the order they were tried.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from mediaflow.errors import MediaflowError, TransientError


@dataclass(frozen=True, slots=True)
class PathFailure:
    """One fetch path's failure within an attempt."""

    path: str
    error: MediaflowError


def verdict(failures: Sequence[PathFailure], *, last_attempt: bool) -> MediaflowError:
    """The error an attempt raises when each of its paths failed (see the module docstring).

    Args:
        failures: every path's failure, in the order the paths were tried (at least one).
        last_attempt: no retry tier is left after this attempt.

    Returns:
        One of the errors (same class, kind and ``Retry-After``), its message
        naming every path's failure when there was more than one.
    """
    transient = [f for f in failures if isinstance(f.error, TransientError)]
    permanent = [f for f in failures if not isinstance(f.error, TransientError)]
    if transient and (not last_attempt or not permanent):
        chosen = transient[0].error
    else:
        chosen = permanent[-1].error
    if len(failures) == 1:
        return chosen
    restated = copy.copy(chosen)
    restated.args = ("; ".join(f"{f.path}: {f.error.message}" for f in failures),)
    return restated


__all__ = ["PathFailure", "verdict"]
