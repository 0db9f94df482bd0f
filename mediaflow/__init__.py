"""mediaflow: WhatsApp media from provider webhooks, through Kafka, into your S3 bucket, verified.

The shared core lives here: settings (:mod:`mediaflow.config`), the error tree
(:mod:`mediaflow.errors`), typed records (:mod:`mediaflow.events`), the Avro
codec (:mod:`mediaflow.codec`), Kafka plumbing (:mod:`mediaflow.kafka`),
provider payload parsing (:mod:`mediaflow.providers`) and the CLI.
The stages live in ``producers/`` and ``processors/``; I/O to S3 and
databases in ``storage/``.
"""

__version__ = "0.1.0"
