"""The ledger: every media the simulator sent, and what it was built to become.

Written as the webhooks are generated, from how they were built (never by
parsing their bodies), so a pipeline bug that misreads a body cannot hide in
it. One JSON object a line, one line per media of each distinct message (a
redelivery repeats a message: it adds no line). The chaos oracle
(``tests/chaos/oracle.py``) reads the file with its own reader, sharing no
code with the simulator or the pipeline, and holds the pipeline's outputs
against it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the oracle reads ledgers without importing the pipeline
    from simulator.webhooks import Webhook

STORE = "store"
"""The fate of a media meant to be stored (it meets only faults that pass)."""


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One media as the simulator built it.

    Attributes:
        provider: the provider whose webhook carries it.
        client_id: the tenant's client (first segment of its key).
        instance_id: the provider instance.
        message_id: the WhatsApp message that carries it.
        media_type: ``image``, ``video``, ``audio``, ``document`` or ``sticker``.
        day: ``yyyy/mm/dd`` of the message timestamp.
        sha256: hex SHA-256 of its plaintext.
        size: plaintext length in bytes.
        fate: :data:`STORE` or the dead-letter kind it was built to have.
        accepted: whether the receiver answered its webhook 200 (``None``
            until the webhook was sent).
    """

    provider: str
    client_id: str
    instance_id: str
    message_id: str
    media_type: str
    day: str
    sha256: str
    size: int
    fate: str
    accepted: bool | None = None


def entries(webhook: Webhook, clients: Mapping[str, str]) -> list[LedgerEntry]:
    """The ledger lines of one webhook (none for a webhook without media).

    Args:
        webhook: as the factory built it.
        clients: instance id -> client id (the tenants file's mapping).
    """
    if not webhook.media or webhook.message_id is None or webhook.day is None:
        return []
    return [
        LedgerEntry(
            provider=webhook.provider,
            client_id=clients[webhook.instance_id],
            instance_id=webhook.instance_id,
            message_id=webhook.message_id,
            media_type=media.media_type.value,
            day=webhook.day,
            sha256=media.sha256_hex,
            size=media.size,
            fate=webhook.fate,
        )
        for media in webhook.media
    ]


def build(
    webhooks: Iterable[Webhook],
    clients: Mapping[str, str],
    accepted: Mapping[str | None, bool] | None = None,
) -> list[LedgerEntry]:
    """Ledger lines of ``webhooks``, one per media of each distinct message.

    Args:
        webhooks: every webhook of a run, in order.
        clients: instance id -> client id.
        accepted: message id -> whether any delivery of it was answered 200
            (unknown when omitted).
    """
    seen: set[tuple[str, str, str]] = set()
    out: list[LedgerEntry] = []
    for hook in webhooks:
        for entry in entries(hook, clients):
            identity = (entry.provider, entry.message_id, entry.sha256)
            if identity in seen:
                continue
            seen.add(identity)
            if accepted is not None:
                entry = dataclasses.replace(entry, accepted=accepted.get(entry.message_id, False))
            out.append(entry)
    return out


def write(path: Path, ledger: Iterable[LedgerEntry]) -> None:
    """Write ``ledger`` to ``path``, one JSON object a line."""
    with path.open("w", encoding="utf-8") as out:
        for entry in ledger:
            out.write(json.dumps(dataclasses.asdict(entry), sort_keys=True) + "\n")


__all__ = ["STORE", "LedgerEntry", "build", "entries", "write"]
