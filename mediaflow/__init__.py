"""mediaflow: WhatsApp media from provider webhooks, through Kafka, into your S3 bucket, verified.

The shared core lives here: settings (:mod:`mediaflow.config`), the error tree
(:mod:`mediaflow.errors`), typed records (:mod:`mediaflow.events`,
:mod:`mediaflow.media_state`), the Avro codec (:mod:`mediaflow.codec`), Kafka
plumbing (:mod:`mediaflow.kafka`), provider payload parsing
(:mod:`mediaflow.providers`). Above it: the stages, :mod:`mediaflow.producers`
and :mod:`mediaflow.processors` (the repository's ``producers/`` and
``processors/`` folders), with I/O to S3 and databases in
:mod:`mediaflow.storage` (``storage/``); on top, the operator tools
(:mod:`mediaflow.ops`) and the CLI (:mod:`mediaflow.cli`).
"""

__version__ = "0.1.0"
