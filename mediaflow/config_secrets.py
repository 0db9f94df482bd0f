"""Which settings are secret: masked whole for display, listed for the log scrubber.

``mediaflow config show`` prints :func:`masked`; every entry point registers
:func:`secret_values` with :func:`mediaflow.logging.register_secrets`, so no
secret setting shows in a log line, whichever library writes it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from mediaflow.config import Secret, Settings
from mediaflow.logging import REDACTED, mask_urls


def masked(settings: Settings) -> dict[str, Any]:
    """Return the effective settings as plain data with every secret masked whole.

    Secrets become ``****``; so does every Kafka property whose name mentions
    a password, secret, token, key, credential or JAAS/OAuth configuration
    (``sasl.password``, ``ssl.key.pem``, ``sasl.jaas.config``...); every URL
    loses its user-info, query and fragment (see :func:`mediaflow.logging.mask_url`).
    """
    data: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            data[f.name] = {
                sub.name: _mask_value(getattr(value, sub.name)) for sub in dataclasses.fields(value)
            }
        else:
            data[f.name] = _mask_value(value)
    return data


def secret_values(settings: Settings) -> list[str]:
    """Every secret value the settings hold, for :func:`mediaflow.logging.register_secrets`.

    The S3 secret key, the API token, secret Kafka properties, and from every
    URL setting its password and the values of query parameters named like a
    token, key, secret or password. Identifiers are left out, as registering
    them would mask every occurrence of a common word: the S3 access key *id*
    (AWS prints it in its consoles; the local default is "mediaflow") and a
    URL's user name (``postgres``); :func:`mediaflow.logging.mask_url` hides
    the whole user-info of a URL anyway.
    """
    found = [settings.s3.secret_key.reveal(), settings.api_token.reveal()]
    found += [v for k, v in settings.kafka.properties.items() if _SECRET_PROPERTY.search(k)]
    for section in (settings, settings.kafka, settings.s3, settings.downloader):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, str) and "://" in value:
                found += _url_secrets(value)
    return [value for value in found if value]


_SECRET_PROPERTY = re.compile(
    r"password|secret|token|key|credential|jaas|oauthbearer\.config", re.IGNORECASE
)
_SECRET_PARAMETER = re.compile(r"token|key|secret|pass|pwd|sig|auth|credential", re.IGNORECASE)


def _mask_value(value: Any) -> Any:
    if isinstance(value, Secret):
        return REDACTED if value else ""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _SECRET_PROPERTY.search(k) else _mask_value(v) for k, v in value.items()
        }
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_mask_value(item) for item in value]
    if isinstance(value, str):
        return mask_urls(value)
    return value


def _url_secrets(url: str) -> list[str]:
    """The password and the secret-named query values of ``url``."""
    rest = url.partition("://")[2]
    userinfo, at, _host = rest.split("/", 1)[0].rpartition("@")
    found = [userinfo.partition(":")[2]]
    query = rest[len(userinfo) + len(at) :].partition("?")[2].partition("#")[0]
    found += [v for k, v in parse_qsl(query) if _SECRET_PARAMETER.search(k)]
    return found


__all__ = ["masked", "secret_values"]
