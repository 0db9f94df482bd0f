"""The read side: media state projected from the media event log, and its HTTP API.

Modules: :mod:`.consumer` (``mediaflow run projection``), :mod:`.rebuild`
(``mediaflow projection rebuild``), :mod:`.api` (``mediaflow serve api``) with
:mod:`.views` (a row as JSON, the query parameters it reads), :mod:`.changelog`
(the latest state per media on ``media.state``). The pure state machine they
share with the stores is :mod:`mediaflow.media_state`.
"""
