"""The overview's numbers: ``mediaflow status`` computed in a thread, shared and kept briefly.

Every open dashboard polls the overview; one look at the cluster (offsets,
data ends, the dead-letter count, S3, the projection) serves all of them for
:data:`FRESH_S`, so ten tabs do not mean ten times the Kafka reads. Two
successive looks give the rates, exactly as ``status --watch`` does. The
24-hour activity chart reads the whole projection table, so it is kept
:data:`CHART_FRESH_S`, per client filter; so are one client's numbers
(:meth:`Overview.client`), which read the whole dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.scan import RecordCounter
from mediaflow.kafka.topics import load_layout
from mediaflow.media_state import IN_FLIGHT
from mediaflow.ops import dlq, status
from mediaflow.ops._output import to_json
from mediaflow.ops.letters import LetterState, letter_states
from mediaflow.ops.ui.chart import BUCKET_MS, bars, window_start
from mediaflow.storage.projection import ProjectionStore

FRESH_S = 3.0
CHART_FRESH_S = 30.0
CHART_CACHE_ENTRIES = 64


class Overview:
    """The latest status as JSON-ready data, refreshed at most every :data:`FRESH_S`."""

    def __init__(
        self,
        settings: Settings,
        s3: Any,
        store: ProjectionStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._s3 = s3
        self._store = store
        self._clock = clock
        self._wall_clock = wall_clock
        self._charts: dict[str | None, tuple[float, dict[str, Any]]] = {}
        self._clients: dict[str, tuple[float, dict[str, Any]]] = {}
        self._dead_letters: RecordCounter | None = None
        self._admin: AdminClient | None = None
        self._previous: status.Sample | None = None
        self._data: dict[str, Any] | None = None
        self._taken_at = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self) -> dict[str, Any]:
        """The status, from cache when fresh; ``{"error": ...}`` when Kafka is away."""
        async with self._lock:
            if self._data is None or self._clock() - self._taken_at >= FRESH_S:
                self._data = await asyncio.to_thread(self._look)
                self._taken_at = self._clock()
            return self._data

    async def chart(self, client_id: str | None) -> dict[str, Any]:
        """The activity chart of the last 24 h (of one client, or all), from cache when fresh."""
        cached = self._charts.get(client_id)
        if cached is not None and self._clock() - cached[0] < CHART_FRESH_S:
            return cached[1]
        start = window_start(int(self._wall_clock() * 1000))
        activity = await asyncio.to_thread(
            self._store.activity, since_ms=start, bucket_ms=BUCKET_MS, client_id=client_id
        )
        if len(self._charts) >= CHART_CACHE_ENTRIES:
            self._charts.clear()  # any client name can be asked for: keep the cache bounded
        self._charts[client_id] = (self._clock(), bars(activity, start))
        return self._charts[client_id][1]

    async def client(self, client_id: str) -> dict[str, Any]:
        """One client's pending media, oldest pending age and open dead letters (cached)."""
        cached = self._clients.get(client_id)
        if cached is not None and self._clock() - cached[0] < CHART_FRESH_S:
            return cached[1]
        numbers = await asyncio.to_thread(self._client_numbers, client_id)
        if len(self._clients) >= CHART_CACHE_ENTRIES:
            self._clients.clear()
        self._clients[client_id] = (self._clock(), numbers)
        return numbers

    def _client_numbers(self, client_id: str) -> dict[str, Any]:
        stats = self._store.stats(client_id)
        oldest = stats.oldest_in_flight_at
        numbers: dict[str, Any] = {
            # Requested but not stored, dead-lettered or dismissed yet.
            "pending": sum(stats.by_status.get(s.value, 0) for s in IN_FLIGHT),
            "oldest_pending_age_s": (
                None if oldest is None else max(0, round(self._wall_clock() - oldest / 1000))
            ),
        }
        try:
            settings = self._settings
            layout = load_layout(settings.kafka)
            views = [
                v
                for v in dlq.read_dead_letters(settings, layout, AvroCodec())
                if v.client_id == client_id
            ]
        except MediaflowError as exc:
            return {**numbers, "open_dead_letters": None, "error": exc.message}
        states = letter_states(settings, views).values()
        return {**numbers, "open_dead_letters": sum(s == LetterState.OPEN for s in states)}

    def _look(self) -> dict[str, Any]:
        settings = self._settings
        try:
            layout = load_layout(settings.kafka)
            self._admin = self._admin or admin_client(settings.kafka)
            # Each poll reads only the dead letters written since the previous one.
            self._dead_letters = self._dead_letters or RecordCounter(
                settings.kafka, layout.dead_letters
            )
            sample = status.take_sample(self._admin, settings, layout)
            previous, self._previous = self._previous, sample
            rows = status.lag_rows(sample, previous)
            state = status.health(settings, layout, self._s3, self._admin, self._dead_letters)
        except MediaflowError as exc:
            return {"error": exc.message}
        stages = status.stage_rows(rows, sample.first_pending, self._wall_clock() * 1000)
        # Through the CLI's JSON encoder: the page shows what `status --json` prints.
        return dict(json.loads(to_json(status.render(rows, state, stages))))


__all__ = ["CHART_FRESH_S", "FRESH_S", "Overview"]
