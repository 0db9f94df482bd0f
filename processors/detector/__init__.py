"""Media detection: webhook envelopes in, download requests and media events out.

One ``MediaDownloadRequested`` and one ``MediaDetected`` per media, exactly
once (Kafka transactions).

* :mod:`~mediaflow.processors.detector.transform`: the pure transform;
* :mod:`~mediaflow.processors.detector.stage`: the stage handler and the
  ``mediaflow run detector`` role.
"""

from mediaflow.processors.detector.stage import (
    GROUP,
    DetectorStage,
    build_worker,
    group_id,
    main,
    transactional_id,
)
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
    "GROUP",
    "OutputTopics",
    "build_worker",
    "detect",
    "event_id",
    "group_id",
    "load_body",
    "main",
    "read_webhook",
    "trace_of",
    "transactional_id",
]
