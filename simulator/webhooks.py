"""Realistic provider webhook bodies built from sample media (pure: no I/O).

:class:`WebhookFactory` makes the bodies W-API, Evolution API and Z-API send
(whatsapp-media.md sections 1 and 4): every media type, the WAProto wrappers,
text, statuses, groups, ``fromMe`` deliveries, redeliveries of one message and
a small share of malformed bodies. WAProto ``url`` fields point at the fake
CDN and Z-API links at the fake W-API's ``/files/<id>``, so every media is
downloadable offline. One seeded generator drives every choice.

At about 480 lines it stays one module: the builders of the three providers
share that generator, the envelopes and the message ids, and a run is only
reproducible while every choice draws from it in the same order.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mediaflow.events import MediaType
from simulator.media import MediaLibrary, SampleMedia

DEMO_INSTANCES: dict[str, str] = {
    "wapi": "3B6XIW-ZTS923-GEAY6V",
    "evolution": "loja-centro",
    "zapi": "3C8A1F2B9D4E6A7C5B3D1F9E8A7C6B5D",
}
"""Provider -> instance id of the demo tenants in ``deploy/tenants.toml``."""

CONNECTED_PHONE = "5511999990000"
_MOMENT = 1732800000

_WAPROTO_KEY: dict[tuple[MediaType, str | None], str] = {
    (MediaType.IMAGE, None): "imageMessage",
    (MediaType.VIDEO, None): "videoMessage",
    (MediaType.VIDEO, "gif"): "videoMessage",
    (MediaType.VIDEO, "ptv"): "ptvMessage",
    (MediaType.AUDIO, None): "audioMessage",
    (MediaType.AUDIO, "ptt"): "audioMessage",
    (MediaType.DOCUMENT, None): "documentMessage",
    (MediaType.STICKER, None): "stickerMessage",
    (MediaType.STICKER, "animated"): "stickerMessage",
}

# Which wrappers a real client puts around which media types.
WRAPPERS: dict[str, frozenset[MediaType]] = {
    "ephemeralMessage": frozenset(MediaType),
    "viewOnceMessage": frozenset({MediaType.IMAGE, MediaType.VIDEO}),
    "viewOnceMessageV2": frozenset({MediaType.IMAGE, MediaType.VIDEO}),
    "viewOnceMessageV2Extension": frozenset({MediaType.AUDIO}),
    "documentWithCaptionMessage": frozenset({MediaType.DOCUMENT}),
}

_MAX_NESTED_MEDIA = 32
"""One media per wrapper level; the parser walks wrappers this deep (``MAX_DEPTH``)."""

_NAMES = ("Maria Souza", "João", "Ana Lima", "Carlos", "Loja Centro", "Beatriz")
_TEXTS = ("Bom dia!", "Qual o horário de hoje?", "Obrigado", "ok 👍", "Segue em anexo")


@dataclasses.dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook ready to POST.

    Attributes:
        provider: ``wapi``, ``evolution`` or ``zapi`` (the receiver's route).
        instance_id: the instance the body names (its tenant's secret authenticates it).
        kind: what it is, for summaries: ``media``, ``wrapped``, ``group``,
            ``delivery``, ``redelivery``, ``text``, ``status``,
            ``malformed_json``, ``broken_media``, ``fanout``.
        body: the exact bytes to send.
        message_id: the WhatsApp message id, when the body has one.
        media: the sample media the message carries (downloadable ones).
        fate: what it was built to become, known by construction (the chaos
            oracle's ledger, never derived by parsing the body): ``store``
            (each of its media retrievable, perhaps only after transient
            faults), or the dead-letter kind it was built to have
            (``invalid_payload`` for a broken media key, ``too_many_media``
            for a fan-out).
        day: ``yyyy/mm/dd`` (UTC) of the message timestamp the body declares,
            where a stored media's key puts it; ``None`` without media.

    """

    provider: str
    instance_id: str
    kind: str
    body: bytes = dataclasses.field(repr=False)
    message_id: str | None = None
    media: tuple[SampleMedia, ...] = ()
    fate: str = "store"
    day: str | None = None

    def payload(self) -> Any:
        """The parsed JSON body.

        Raises:
            ValueError: the body is deliberately not JSON (``malformed_json``).

        """
        return json.loads(self.body)


def _day(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y/%m/%d")


def _dump(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class WebhookFactory:
    """Builds webhook bodies; same seed and same calls give the same bodies."""

    def __init__(
        self,
        library: MediaLibrary,
        *,
        cdn_url: str,
        files_url: str,
        seed: int = 0,
        instances: dict[str, str] | None = None,
    ) -> None:
        """Prepare a factory.

        Args:
            library: where new media come from (:meth:`mixed` adds to it).
            cdn_url: base URL of the (fake) CDN for WAProto ``url`` fields.
            files_url: base URL serving ``/files/<cdn id>`` plaintext (the fake
                W-API) for Z-API's already-decrypted links.
            seed: seeds message ids, names and the mix.
            instances: provider -> instance id; the demo tenants by default.

        """
        self.library = library
        self.cdn_url = cdn_url.rstrip("/")
        self.files_url = files_url.rstrip("/")
        self.instances = {**DEMO_INSTANCES, **(instances or {})}
        self._rng = random.Random(seed)
        self._sent_media: list[Webhook] = []

    # ------------------------------------------------------------------ W-API

    def wapi_media(
        self,
        media: SampleMedia,
        *,
        wrapper: str | None = None,
        group: bool = False,
        from_me: bool = False,
    ) -> Webhook:
        """A W-API ``webhookReceived`` (or, ``from_me``, ``webhookDelivery``) carrying ``media``.

        Args:
            media: the media the message carries.
            wrapper: a WAProto wrapper key from :data:`WRAPPERS`, or ``None``.
            group: sent in a group chat.
            from_me: sent by the connected phone (a ``webhookDelivery``).

        Raises:
            ValueError: the wrapper does not fit the media type.

        """
        content = self._wrap(
            {_WAPROTO_KEY[(media.media_type, media.variant)]: self._waproto(media)}, wrapper, media
        )
        message_id = self._message_id()
        payload = self._wapi_envelope(message_id, content, group=group, from_me=from_me)
        kind = "delivery" if from_me else "group" if group else "wrapped" if wrapper else "media"
        hook = Webhook(
            "wapi",
            self.instances["wapi"],
            kind,
            _dump(payload),
            message_id,
            (media,),
            day=_day(payload["moment"]),
        )
        self._sent_media.append(hook)
        return hook

    def wapi_fanout(self, count: int) -> Webhook:
        """A W-API webhook built to fan out: ``count`` new media, each one wrapper deeper.

        A WhatsApp message carries one media; the detector must turn a body
        holding more than ``MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK`` into one dead
        letter (``too_many_media``) and download none of them. Every media is
        valid, so a detector without the cap would fetch them all.

        Raises:
            ValueError: ``count`` is below 2 or above the parser's wrapper depth (32).
        """
        if not 2 <= count <= _MAX_NESTED_MEDIA:
            raise ValueError(f"a fan-out webhook holds 2 to {_MAX_NESTED_MEDIA} media, not {count}")
        media = tuple(self._new_media() for _ in range(count))
        wrappers = sorted(WRAPPERS)
        content: dict[str, Any] = {}
        for depth, item in reversed(list(enumerate(media))):
            level: dict[str, Any] = {
                _WAPROTO_KEY[(item.media_type, item.variant)]: self._waproto(item)
            }
            if content:
                level[wrappers[depth % len(wrappers)]] = {"message": content}
            content = level
        message_id = self._message_id()
        payload = self._wapi_envelope(message_id, content)
        return Webhook(
            "wapi",
            self.instances["wapi"],
            "fanout",
            _dump(payload),
            message_id,
            media,
            fate="too_many_media",
            day=_day(payload["moment"]),
        )

    def wapi_text(self) -> Webhook:
        """A W-API text message (no media)."""
        message_id = self._message_id()
        if self._rng.random() < 0.5:
            content: dict[str, Any] = {"conversation": self._rng.choice(_TEXTS)}
        else:
            content = {"extendedTextMessage": {"text": self._rng.choice(_TEXTS)}}
        payload = self._wapi_envelope(message_id, content)
        return Webhook("wapi", self.instances["wapi"], "text", _dump(payload), message_id)

    def wapi_status(self, message_id: str | None = None) -> Webhook:
        """A W-API ``webhookStatus`` about ``message_id`` (a new id when omitted)."""
        message_id = message_id or self._message_id()
        payload = {
            "event": "webhookStatus",
            "instanceId": self.instances["wapi"],
            "connectedPhone": CONNECTED_PHONE,
            "isGroup": False,
            "messageId": message_id,
            "fromMe": True,
            "moment": _MOMENT + 50,
            "chat": {"id": self._phone()},
            "status": self._rng.choice(("SENT", "DELIVERY", "READ")),
        }
        return Webhook("wapi", self.instances["wapi"], "status", _dump(payload), message_id)

    def redelivery(self, webhook: Webhook) -> Webhook:
        """The same message delivered again (providers retry): same body, same ids."""
        return dataclasses.replace(webhook, kind="redelivery")

    def malformed_json(self) -> Webhook:
        """A body that is not JSON at all (a truncated upload); the receiver must refuse it."""
        text = self.wapi_text().body
        return Webhook("wapi", self.instances["wapi"], "malformed_json", text[: len(text) // 2])

    def broken_media(self, media: SampleMedia) -> Webhook:
        """A W-API media message whose ``mediaKey`` has the wrong length.

        The receiver accepts it (the envelope is fine); the media can never be
        downloaded, so the pipeline must dead-letter it, not lose it silently.
        """
        fields = self._waproto(media)
        fields["mediaKey"] = base64.b64encode(media.media_key[:16]).decode("ascii")
        message_id = self._message_id()
        content = {_WAPROTO_KEY[(media.media_type, media.variant)]: fields}
        payload = self._wapi_envelope(message_id, content)
        return Webhook(
            "wapi",
            self.instances["wapi"],
            "broken_media",
            _dump(payload),
            message_id,
            (media,),
            fate="invalid_payload",
            day=_day(payload["moment"]),
        )

    # ------------------------------------------------------------- Evolution

    def evolution_media(self, media: SampleMedia) -> Webhook:
        """An Evolution API v2 ``messages.upsert`` carrying ``media``."""
        key = _WAPROTO_KEY[(media.media_type, media.variant)]
        message_id = self._message_id()
        payload = {
            "event": "messages.upsert",
            "instance": self.instances["evolution"],
            "data": {
                "key": {
                    "remoteJid": f"{self._phone()}@s.whatsapp.net",
                    "fromMe": False,
                    "id": message_id,
                },
                "pushName": self._rng.choice(_NAMES),
                "status": "DELIVERY_ACK",
                "message": {key: self._waproto(media)},
                "messageType": key,
                "messageTimestamp": _MOMENT,
                "source": "android",
            },
            "date_time": "2024-11-28T10:20:00.123Z",
            "sender": f"{CONNECTED_PHONE}@s.whatsapp.net",
        }
        hook = Webhook(
            "evolution",
            self.instances["evolution"],
            "media",
            _dump(payload),
            message_id,
            (media,),
            day=_day(_MOMENT),
        )
        self._sent_media.append(hook)
        return hook

    def evolution_status(self) -> Webhook:
        """An Evolution API ``messages.update`` (a read receipt, no media)."""
        message_id = self._message_id()
        payload = {
            "event": "messages.update",
            "instance": self.instances["evolution"],
            "data": {
                "keyId": message_id,
                "remoteJid": f"{self._phone()}@s.whatsapp.net",
                "fromMe": True,
                "status": "READ",
            },
            "date_time": "2024-11-28T10:21:00.000Z",
        }
        return Webhook(
            "evolution", self.instances["evolution"], "status", _dump(payload), message_id
        )

    # ----------------------------------------------------------------- Z-API

    def zapi_media(self, media: SampleMedia) -> Webhook:
        """A Z-API ``ReceivedCallback`` whose link serves the already-decrypted file."""
        field = {
            MediaType.IMAGE: "image",
            MediaType.VIDEO: "video",
            MediaType.AUDIO: "audio",
            MediaType.DOCUMENT: "document",
            MediaType.STICKER: "sticker",
        }[media.media_type]
        item: dict[str, Any] = {
            "mimeType": media.mimetype,
            f"{field}Url": f"{self.files_url}/files/{media.cdn_id}",
        }
        if media.media_type is MediaType.DOCUMENT:
            item["fileName"] = media.file_name or "documento"
            item["title"] = media.file_name or "documento"
        if media.media_type is MediaType.AUDIO:
            item["ptt"] = media.variant == "ptt"
            item["seconds"] = media.seconds
        message_id = self._message_id()
        payload = self._zapi_envelope(message_id)
        payload[field] = item
        hook = Webhook(
            "zapi",
            self.instances["zapi"],
            "media",
            _dump(payload),
            message_id,
            (media,),
            day=_day(payload["momment"] // 1000),
        )
        self._sent_media.append(hook)
        return hook

    def zapi_text(self) -> Webhook:
        """A Z-API text message."""
        message_id = self._message_id()
        payload = self._zapi_envelope(message_id)
        payload["text"] = {"message": self._rng.choice(_TEXTS)}
        return Webhook("zapi", self.instances["zapi"], "text", _dump(payload), message_id)

    def zapi_status(self) -> Webhook:
        """A Z-API ``MessageStatusCallback``."""
        message_id = self._message_id()
        payload = {
            "instanceId": self.instances["zapi"],
            "status": "READ",
            "ids": [message_id],
            "momment": _MOMENT * 1000 + 60_000,
            "phoneDevice": 0,
            "phone": self._phone(),
            "type": "MessageStatusCallback",
            "isGroup": False,
        }
        return Webhook("zapi", self.instances["zapi"], "status", _dump(payload), message_id)

    # ------------------------------------------------------------------ mixes

    def mixed(self, count: int) -> list[Webhook]:
        """``count`` webhooks in a realistic mix of every kind above.

        Roughly: 60 % W-API media (plain, wrapped, group, fromMe), 10 % text,
        8 % statuses, 5 % redeliveries, 10 % Evolution/Z-API media, and about
        2 % malformed (half not JSON, half a broken mediaKey). New media come
        from the library.
        """
        builders: list[tuple[Callable[[], Webhook], int]] = [
            (lambda: self.wapi_media(self._new_media()), 40),
            (self._wrapped, 10),
            (lambda: self.wapi_media(self._new_media(), group=True), 6),
            (lambda: self.wapi_media(self._new_media(), from_me=True), 4),
            (self.wapi_text, 8),
            (self.wapi_status, 5),
            (self._redelivery, 5),
            (lambda: self.evolution_media(self._new_media()), 6),
            (self.evolution_status, 1),
            (lambda: self.zapi_media(self._new_media()), 5),
            (self.zapi_text, 2),
            (self.zapi_status, 2),
            (self.malformed_json, 1),
            (lambda: self.broken_media(self._new_media()), 1),
        ]
        picks = self._rng.choices(
            [b for b, _ in builders], weights=[w for _, w in builders], k=count
        )
        return [build() for build in picks]

    def _wrapped(self) -> Webhook:
        wrapper = self._rng.choice(sorted(WRAPPERS))
        media_type = self._rng.choice(sorted(WRAPPERS[wrapper]))
        variant = "ptt" if media_type is MediaType.AUDIO else None
        return self.wapi_media(self.library.make(media_type, variant), wrapper=wrapper)

    def _redelivery(self) -> Webhook:
        if not self._sent_media:
            return self.wapi_media(self._new_media())
        return self.redelivery(self._rng.choice(self._sent_media))

    def _new_media(self) -> SampleMedia:
        return self.library.mixed(1)[0]

    # ---------------------------------------------------------------- helpers

    def _waproto(self, media: SampleMedia) -> dict[str, Any]:
        fields = media.waproto_fields(self.cdn_url)
        kind = media.media_type
        if kind is MediaType.IMAGE:
            fields.update(height=media.height, width=media.width, jpegThumbnail=self._thumb())
            if media.caption:
                fields["caption"] = media.caption
        elif kind is MediaType.VIDEO:
            fields["seconds"] = media.seconds
            if media.variant == "gif":
                fields["gifPlayback"] = True
        elif kind is MediaType.AUDIO:
            fields.update(seconds=media.seconds, ptt=media.variant == "ptt")
            if media.variant == "ptt":
                fields["waveform"] = base64.b64encode(self._rng.randbytes(64)).decode("ascii")
        elif kind is MediaType.DOCUMENT:
            name = media.file_name if media.file_name is not None else "documento.pdf"
            fields.update(fileName=name, title=name, pageCount=self._rng.randint(1, 12))
        elif kind is MediaType.STICKER:
            fields.update(
                height=512, width=512, isAnimated=media.variant == "animated", isAvatar=False
            )
        return fields

    def _wrap(
        self, content: dict[str, Any], wrapper: str | None, media: SampleMedia
    ) -> dict[str, Any]:
        if wrapper is None:
            return content
        if media.media_type not in WRAPPERS.get(wrapper, frozenset()):
            raise ValueError(f"wrapper {wrapper!r} does not carry {media.media_type.value} media")
        if wrapper.startswith("viewOnce"):
            next(iter(content.values()))["viewOnce"] = True
        wrapped = {wrapper: {"message": content}}
        if wrapper != "ephemeralMessage" and self._rng.random() < 0.3:
            # Disappearing chats nest the other wrappers inside ephemeralMessage.
            wrapped = {"ephemeralMessage": {"message": wrapped}}
        return wrapped

    def _wapi_envelope(
        self,
        message_id: str,
        content: dict[str, Any],
        *,
        group: bool = False,
        from_me: bool = False,
    ) -> dict[str, Any]:
        sender = CONNECTED_PHONE if from_me else self._phone()
        payload: dict[str, Any] = {
            "event": "webhookDelivery" if from_me else "webhookReceived",
            "instanceId": self.instances["wapi"],
            "connectedPhone": CONNECTED_PHONE,
            "isGroup": group,
            "messageId": message_id,
            "fromMe": from_me,
            "moment": _MOMENT + self._rng.randint(0, 86_400),
            "chat": {
                "id": f"1203630{self._rng.randrange(10**11, 10**12)}@g.us" if group else sender,
                "profilePicture": "",
            },
            "sender": {
                "id": sender,
                "profilePicture": "",
                "pushName": self._rng.choice(_NAMES),
                "verifiedBizName": "",
            },
            "msgContent": content,
        }
        if from_me:
            payload["fromApi"] = self._rng.random() < 0.5
        return payload

    def _zapi_envelope(self, message_id: str) -> dict[str, Any]:
        return {
            "isStatusReply": False,
            "connectedPhone": CONNECTED_PHONE,
            "isEdit": False,
            "isGroup": False,
            "isNewsletter": False,
            "instanceId": self.instances["zapi"],
            "messageId": message_id,
            "phone": self._phone(),
            "fromMe": False,
            "momment": _MOMENT * 1000 + self._rng.randint(0, 999),
            "status": "RECEIVED",
            "senderName": self._rng.choice(_NAMES),
            "broadcast": False,
            "type": "ReceivedCallback",
        }

    def _message_id(self) -> str:
        return "3EB0" + self._rng.randbytes(8).hex().upper()

    def _phone(self) -> str:
        return f"55119{self._rng.randrange(10**7, 10**8)}"

    def _thumb(self) -> str:
        return base64.b64encode(b"\xff\xd8\xff\xe0" + self._rng.randbytes(60)).decode("ascii")


__all__ = ["CONNECTED_PHONE", "DEMO_INSTANCES", "WRAPPERS", "Webhook", "WebhookFactory"]
