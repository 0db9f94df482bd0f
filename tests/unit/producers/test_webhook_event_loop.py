"""The receiver's event loop waits less than a millisecond when asked, and still sees I/O."""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from mediaflow.producers.webhook import event_loop

pytestmark = pytest.mark.skipif(
    not hasattr(selectors, "EpollSelector"), reason="the precise selector is epoll's"
)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


@pytest.fixture
def selector(
    pair: tuple[socket.socket, socket.socket],
) -> Iterator[event_loop.PreciseEpollSelector]:
    """A precise selector watching the pair's reading end for input."""
    with event_loop.PreciseEpollSelector() as selector:
        selector.register(pair[0], selectors.EVENT_READ)
        yield selector


def test_a_sub_millisecond_wait_returns_what_is_readable(
    pair: tuple[socket.socket, socket.socket], selector: event_loop.PreciseEpollSelector
) -> None:
    reader, writer = pair
    assert selector.select(0.0005) == []
    writer.send(b"x")
    [(key, events)] = selector.select(0.0005)
    assert key.fileobj is reader
    assert events == selectors.EVENT_READ


def test_a_sub_millisecond_wait_with_nothing_to_read_sleeps_rather_than_spins(
    selector: event_loop.PreciseEpollSelector,
) -> None:
    started = time.perf_counter()
    for _ in range(20):
        assert selector.select(0.0005) == []
    # A lower bound only: a slow machine waits longer, never shorter.
    assert time.perf_counter() - started >= 20 * 0.0004


def test_longer_and_unbounded_waits_are_epolls_own(
    pair: tuple[socket.socket, socket.socket], selector: event_loop.PreciseEpollSelector
) -> None:
    pair[1].send(b"x")
    assert len(selector.select(0.05)) == 1
    assert len(selector.select(None)) == 1
    assert len(selector.select(0)) == 1


def test_run_drives_a_coroutine_with_sub_millisecond_timers_on_the_precise_loop() -> None:
    async def main() -> tuple[str, type]:
        loop = asyncio.get_running_loop()
        fired: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.0003, fired.set_result, "fired")
        return await fired, type(loop._selector)  # type: ignore[attr-defined]

    assert event_loop.run(main()) == ("fired", event_loop.PreciseEpollSelector)
