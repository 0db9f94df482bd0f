"""The fix a Django team would make to the seed system: a webhook view that enqueues Celery tasks.

``app`` (the Celery application and its settings), ``tasks`` (download,
decrypt, upload), ``web`` (the webhook view), ``side_by_side`` (runs this and
mediaflow on the same webhooks under the same faults). See README.md.
"""
