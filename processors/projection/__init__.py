"""The read side: media state projected from the media event log, and its HTTP API.

Modules: :mod:`.consumer` (``mediaflow run projection``), :mod:`.rebuild`
(``mediaflow projection rebuild``), :mod:`.api` (``mediaflow serve api``). The
pure state machine they share with the stores is :mod:`mediaflow.media_state`.
"""
