"""Stand-ins for the outside world: a fake W-API, a fake WhatsApp CDN, webhook bodies.

Everything is seeded and offline: :class:`MediaLibrary` makes media encrypted
as a WhatsApp client would (:mod:`simulator.encrypt`), :func:`running_simulator`
/ :class:`SimulatorThread` serve them over loopback HTTP with the faults a
:class:`Faults` describes; :class:`WebhookFactory` and :func:`send_webhooks`
play the provider posting webhooks.
"""

from simulator.calls import Call, CallLog
from simulator.cdn import cdn_app
from simulator.encrypt import EncryptedMedia, MediaEncryptor, encrypt_media, generate_media_key
from simulator.faults import Decision, Faults, Outcome
from simulator.media import MediaLibrary, SampleMedia
from simulator.profiles import HOSTILE_FILE_NAMES
from simulator.sender import Delivery, SendSummary, expected_media, send_webhooks
from simulator.servers import Simulator, SimulatorThread, running_simulator
from simulator.wapi import DOWNLOAD_PATH, wapi_app
from simulator.webhooks import DEMO_INSTANCES, Webhook, WebhookFactory

__all__ = [
    "Call",
    "CallLog",
    "DEMO_INSTANCES",
    "DOWNLOAD_PATH",
    "Decision",
    "Delivery",
    "EncryptedMedia",
    "Faults",
    "HOSTILE_FILE_NAMES",
    "MediaEncryptor",
    "MediaLibrary",
    "Outcome",
    "SampleMedia",
    "SendSummary",
    "Simulator",
    "SimulatorThread",
    "Webhook",
    "WebhookFactory",
    "cdn_app",
    "encrypt_media",
    "expected_media",
    "generate_media_key",
    "running_simulator",
    "send_webhooks",
    "wapi_app",
]
