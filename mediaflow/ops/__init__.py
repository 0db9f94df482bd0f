"""Operator tools behind ``mediaflow dlq|replay|reprocess|status|diagnose|reconcile``.

One small module per command family; the CLI wiring is in
:mod:`mediaflow.cli` (``_dlq``, ``_replay``, ``_reprocess``, ``_status``, ``_diagnose``).
"""
