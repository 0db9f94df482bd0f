"""Avro schemas (``*.avsc``) of every record mediaflow writes to Kafka.

The ``.avsc`` files in this folder are the source of truth; the dataclasses in
:mod:`mediaflow.events` mirror them field for field. Schemas evolve
backward-compatibly only: a new field always has a default.
"""

from pathlib import Path

SCHEMA_DIR = Path(__file__).parent
NAMESPACE = "io.mediaflow"

__all__ = ["NAMESPACE", "SCHEMA_DIR"]
