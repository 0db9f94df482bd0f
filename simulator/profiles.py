"""What WhatsApp media look like: formats, sizes, how often each kind shows up.

The tables :class:`~simulator.media.MediaLibrary` draws from, and the file
names senders give documents, hostile ones included.
"""

from __future__ import annotations

import base64
import dataclasses

from mediaflow.events import MediaType


@dataclasses.dataclass(frozen=True, slots=True)
class Format:
    """A file format: its MIME type, the bytes it starts and ends with, its CDN path."""

    mimetype: str
    header: bytes
    trailer: bytes = b""
    path_prefix: str = "/v/t62.7118-24"


# A whole 64x64 JPEG (a gradient, 399 bytes) heads every sample image: decoders stop
# at its end-of-image marker, so a browser draws the sample's preview and the random
# bytes behind it only give the sample its size.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABQODxIPDRQSEBIXFRQYHjIhHhwcHj0sLiQySUBMS0dARkVQWnNiUFVt"
    "VkVGZIhlbXd7gYKBTmCNl4x9lnN+gXz/2wBDARUXFx4aHjshITt8U0ZTfHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8"
    "fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHz/wAARCABAAEADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAA"
    "AgMF/8QAFRABAQAAAAAAAAAAAAAAAAAAAAH/xAAXAQEBAQEAAAAAAAAAAAAAAAACBAUB/8QAFhEBAQEAAAAAAAAA"
    "AAAAAAAAAAIB/9oADAMBAAIRAxEAPwCcOJw4t2mdJw4EKDtKZUhQIcDaUScOJw4G0pllw4nDju0xpUhQIcDaUycO"
    "Jw4O0ok4cCFA2lMsyFAhR3aY0qQ4nDgbSmThxOHA2lEqQoEOBtKZZcOJw4W0xpOHE4cDaUypCgQoG0plSHE4cDaU"
    "S//Z"
)
JPEG = Format("image/jpeg", TINY_JPEG, b"\xff\xd9")
MP4 = Format(
    "video/mp4",
    b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    path_prefix="/v/t62.7161-24",
)
OPUS = Format(
    "audio/ogg; codecs=opus",
    b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
    path_prefix="/v/t62.7117-24",
)
MPEG = Format("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00", path_prefix="/v/t62.7117-24")
PDF = Format("application/pdf", b"%PDF-1.7\n", b"\n%%EOF\n", "/v/t62.7119-24")
DOCX = Format(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"PK\x03\x04\x14\x00\x06\x00",
    path_prefix="/v/t62.7119-24",
)
WEBP = Format("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", path_prefix="/v/t62.15575-24")

# (type, variant) -> (format, smallest size, largest size) in bytes. The ranges
# are what WhatsApp traffic looks like: voice notes are small, videos are not.
PROFILES: dict[tuple[MediaType, str | None], tuple[Format, int, int]] = {
    (MediaType.IMAGE, None): (JPEG, 20_000, 400_000),
    (MediaType.VIDEO, None): (MP4, 300_000, 4_000_000),
    (MediaType.VIDEO, "gif"): (MP4, 50_000, 600_000),
    (MediaType.VIDEO, "ptv"): (MP4, 200_000, 2_000_000),
    (MediaType.AUDIO, "ptt"): (OPUS, 5_000, 120_000),
    (MediaType.AUDIO, None): (MPEG, 100_000, 2_000_000),
    (MediaType.DOCUMENT, None): (PDF, 10_000, 1_500_000),
    (MediaType.STICKER, None): (WEBP, 10_000, 90_000),
    (MediaType.STICKER, "animated"): (WEBP, 30_000, 300_000),
}

# How often each kind shows up in a mixed batch (weights, not percentages).
MIX: tuple[tuple[tuple[MediaType, str | None], int], ...] = (
    ((MediaType.IMAGE, None), 35),
    ((MediaType.AUDIO, "ptt"), 25),
    ((MediaType.VIDEO, None), 8),
    ((MediaType.VIDEO, "gif"), 2),
    ((MediaType.VIDEO, "ptv"), 2),
    ((MediaType.AUDIO, None), 4),
    ((MediaType.DOCUMENT, None), 14),
    ((MediaType.STICKER, None), 8),
    ((MediaType.STICKER, "animated"), 2),
)

PLAIN_NAMES = (
    "nota fiscal.pdf",
    "contrato assinado.pdf",
    "boleto-novembro.pdf",
    "relatorio_2024.docx",
    "proposta comercial.docx",
    "orcamento.pdf",
)

HOSTILE_FILE_NAMES: tuple[str, ...] = (
    "../../etc/passwd.pdf",
    "..\\..\\windows\\system32\\config.docx",
    "relatório final (1).pdf",
    "CON.pdf",
    "nota\x00fiscal.pdf",
    "a/b/c.docx",
    "<script>alert(1)</script>.pdf",
    " .pdf",
    "📄 recibo 🧾.pdf",
    "x" * 300 + ".pdf",
    ".hidden.docx",
    "",
)
"""File names a sender may choose that must never escape or break an object key."""

HOSTILE_SHARE = 0.1


def minimum_size(fmt: Format) -> int:
    """The fewest bytes a sample of ``fmt`` can have: its header and trailer."""
    return len(fmt.header) + len(fmt.trailer)


__all__ = [
    "DOCX",
    "HOSTILE_FILE_NAMES",
    "HOSTILE_SHARE",
    "MIX",
    "PLAIN_NAMES",
    "PROFILES",
    "WEBP",
    "Format",
    "minimum_size",
]
