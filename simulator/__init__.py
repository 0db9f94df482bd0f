"""Stand-ins for the outside world: a fake W-API, a fake WhatsApp CDN, webhook bodies.

Everything is seeded and offline: :class:`MediaLibrary` makes encrypted media,
:func:`running_simulator` / :class:`SimulatorThread` serve them over loopback
HTTP with the faults a :class:`Faults` describes.
"""

from simulator.calls import Call, CallLog
from simulator.cdn import cdn_app
from simulator.faults import Decision, Faults, Outcome
from simulator.media import HOSTILE_FILE_NAMES, MediaLibrary, SampleMedia
from simulator.servers import Simulator, SimulatorThread, running_simulator
from simulator.wapi import DOWNLOAD_PATH, wapi_app

__all__ = [
    "DOWNLOAD_PATH",
    "HOSTILE_FILE_NAMES",
    "Call",
    "CallLog",
    "Decision",
    "Faults",
    "MediaLibrary",
    "Outcome",
    "SampleMedia",
    "Simulator",
    "SimulatorThread",
    "cdn_app",
    "running_simulator",
    "wapi_app",
]
