"""A found media as a Celery task argument (JSON) and back. Pure.

The view enqueues what mediaflow's parser finds in a webhook
(:func:`mediaflow.providers.parse_webhook`), so both systems see the same media.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from mediaflow.events import MediaInfo, MediaSource, MediaType
from mediaflow.providers import FoundMedia


def to_message(found: FoundMedia) -> dict[str, Any]:
    """``found`` as a JSON-serializable task argument."""
    info = dataclasses.asdict(found.info)
    info["media_type"] = found.info.media_type.value
    moment = found.info.message_timestamp
    info["message_timestamp"] = moment.isoformat() if moment else None
    return {
        "media_id": found.media_id,
        "info": info,
        "source": dataclasses.asdict(found.source),
    }


def from_message(message: dict[str, Any]) -> tuple[str, MediaInfo, MediaSource]:
    """The media id, info and source of a task argument made by :func:`to_message`."""
    info = dict(message["info"])
    info["media_type"] = MediaType(info["media_type"])
    moment = info.get("message_timestamp")
    info["message_timestamp"] = datetime.fromisoformat(moment) if moment else None
    return message["media_id"], MediaInfo(**info), MediaSource(**message["source"])


__all__ = ["from_message", "to_message"]
