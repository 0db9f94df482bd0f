"""The read side: media state projected from the media event log, and its HTTP API.

Modules: :mod:`.apply` (the pure state machine), :mod:`.consumer`
(``mediaflow run projection``), :mod:`.rebuild` (``mediaflow projection
rebuild``), :mod:`.api` (``mediaflow serve api``). Imports stay lazy so the
CLI can load one role without the others' dependencies.
"""
