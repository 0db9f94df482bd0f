"""Media detection: webhook envelopes in, download requests and media events out.

One ``MediaDownloadRequested`` and one ``MediaDetected`` per media, exactly
once (Kafka transactions).

* :mod:`~mediaflow.processors.detector.transform`: the pure transform;
* :mod:`~mediaflow.processors.detector.stage`: the stage handler and the
  ``mediaflow run detector`` role.
"""

from mediaflow.processors.detector.stage import STAGE, DetectorStage, build_worker, open_worker
from mediaflow.processors.detector.transform import (
    EVENT_ID_NAMESPACE,
    Detection,
    OutputTopics,
    detect,
    event_id,
    load_body,
    read_webhook,
    trace_of,
)

__all__ = [
    "Detection",
    "DetectorStage",
    "EVENT_ID_NAMESPACE",
    "OutputTopics",
    "STAGE",
    "build_worker",
    "detect",
    "event_id",
    "load_body",
    "open_worker",
    "read_webhook",
    "trace_of",
]
