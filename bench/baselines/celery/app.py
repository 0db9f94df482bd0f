"""The Celery application and its production settings (README.md says why each one).

Every process (the webhook view and the worker) reads its broker from
``BENCH_CELERY_BROKER_URL`` and the retry budget from ``BENCH_CELERY_*``, once,
here: Celery's own configuration is module-level by design.
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
VISIBILITY_TIMEOUT_S = int(os.environ.get("BENCH_CELERY_VISIBILITY_TIMEOUT_S", "60"))

app = Celery("mediaflow_baseline", broker=BROKER_URL, include=["bench.baselines.celery.tasks"])
app.conf.update(
    # A task is acknowledged after it ran, and given back when its worker process dies.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Each pool process reserves one task at a time: long downloads do not hold others back.
    worker_prefetch_multiplier=1,
    # Redis has no consumer acks: a task reserved by a worker that died is handed out
    # again after the visibility timeout; it must exceed the longest countdown and run.
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    # No result backend: nothing reads results (the bucket is the result).
    task_ignore_result=True,
    task_store_errors_even_if_ignored=False,
    # The webhook view answers 500 when Redis does not take the task within its retries.
    task_publish_retry=True,
    task_publish_retry_policy={
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    },
    task_serializer="json",
    accept_content=["json"],
    # A task stuck past this is killed (its process replaced) and, acks_late, redelivered.
    task_time_limit=120,
    task_soft_time_limit=100,
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
)

__all__ = ["BROKER_URL", "VISIBILITY_TIMEOUT_S", "app"]
