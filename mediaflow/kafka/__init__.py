"""Kafka plumbing shared by every stage, written once.

* :mod:`~mediaflow.kafka.clients`: client construction, error translation;
* :mod:`~mediaflow.kafka.topics`: topics as code;
* :mod:`~mediaflow.kafka.headers`: header names (retry, dead letter, redrive);
* :mod:`~mediaflow.kafka.retry`: the pure retry policy;
* :mod:`~mediaflow.kafka.routing`: retry-tier and dead-letter records;
* :mod:`~mediaflow.kafka.eventlog`: media event records, with the headers every stage writes;
* :mod:`~mediaflow.kafka.publish`: a batch in one transaction, all of it or none of it;
* :mod:`~mediaflow.kafka.worker`: the transactional consume-process-produce loop,
  with :mod:`~mediaflow.kafka.handling` (what a stage gives it, what becomes of a
  failed record), :mod:`~mediaflow.kafka.partitions` (per-partition progress) and
  :mod:`~mediaflow.kafka.watchdog` (a deadline on librdkafka's blocking calls);
* :mod:`~mediaflow.kafka.stage_runner`: one stage as a process (names, signals, exit);
* :mod:`~mediaflow.kafka.scan`: reading a whole topic outside any consumer group.
"""

from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.handling import StageHandler
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryLater, RetryPolicy, RetryTier
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import TopicLayout, load_layout
from mediaflow.kafka.worker import Worker, WorkerOptions

__all__ = [
    "DeadLetter",
    "Decision",
    "FailureRouter",
    "InRecord",
    "OutRecord",
    "RetryLater",
    "RetryPolicy",
    "RetryTier",
    "StageHandler",
    "TopicLayout",
    "TransactionalPublisher",
    "Worker",
    "WorkerOptions",
    "event_record",
    "load_layout",
]
