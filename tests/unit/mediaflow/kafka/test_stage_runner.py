"""run_stage: one way to name, signal, stop and fail every processor stage."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from contextlib import asynccontextmanager

import pytest

from mediaflow.config import Settings
from mediaflow.errors import ConfigError
from mediaflow.kafka.clients import FatalKafkaError
from mediaflow.kafka.stage_runner import EXIT_KAFKA_FATAL, StageSpec, run_stage


class Loop:
    """Sends itself ``signum`` (when given), then runs until stopped; or raises ``fails``."""

    def __init__(self, signum: int | None = None, fails: BaseException | None = None) -> None:
        self.signum, self.fails = signum, fails
        self.stopped = False
        self.closed = False
        self.idle_exit_s: float | None = None

    def stop(self) -> None:
        self.stopped = True

    async def run(self, *, idle_exit_s: float | None = None) -> None:
        self.idle_exit_s = idle_exit_s
        if self.fails is not None:
            raise self.fails
        if self.signum is not None:
            os.kill(os.getpid(), self.signum)
        async with asyncio.timeout(10):
            while not self.stopped:
                await asyncio.sleep(0.01)


def spec_for(loop: Loop, *, transactional: bool = True) -> StageSpec:
    @asynccontextmanager
    async def open_loop(_settings, _clients):
        try:
            yield loop
        finally:
            loop.closed = True

    return StageSpec(name="toy", group="mediaflow-toy", open=open_loop, transactional=transactional)


def events(log_lines) -> list[dict]:
    return [json.loads(line) for line in log_lines.getvalue().splitlines()]


@pytest.fixture
def signal_dispositions():
    """Give this test process its stop signals' dispositions back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_only_stop_the_loop_which_ends_cleanly(
    signum: int, signal_dispositions: None
) -> None:
    loop = Loop(signum)
    assert run_stage(spec_for(loop), Settings(), idle_exit_s=2.5) == 0
    assert loop.stopped and loop.closed
    assert loop.idle_exit_s == 2.5
    # Stopped by a signal: the copies that follow it (Ctrl-C reaches the whole
    # process group, then the supervisor's SIGTERM) cannot end the process halfway.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


@pytest.mark.parametrize(
    ("fenced", "hint"),
    [
        (True, "another copy with the same MEDIAFLOW_INSTANCE_NAME took over"),
        (False, "the Kafka client cannot go on (this can follow a broker outage)"),
    ],
)
def test_a_fatal_kafka_error_exits_with_its_own_code_and_a_hint_that_fits(
    fenced: bool, hint: str, log_lines
) -> None:
    loop = Loop(fails=FatalKafkaError("INVALID_TXN_STATE: Failed to end", fenced=fenced))
    settings = Settings(instance_name="copy-1")

    assert run_stage(spec_for(loop), settings) == EXIT_KAFKA_FATAL

    [line] = [e for e in events(log_lines) if e["event"] == "stage_stopped_fatal"]
    assert line["stage"] == "toy"
    assert line["fenced"] is fenced
    assert line["hint"].startswith(hint)
    assert line["instance_id"] == "mediaflow-toy-copy-1"
    assert line["exit_code"] == EXIT_KAFKA_FATAL
    assert loop.closed


def test_a_transactional_stage_is_a_static_member_named_like_its_transactional_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: dict[str, object] = {}
    monkeypatch.setattr(
        "mediaflow.kafka.clients.consumer",
        lambda _kafka, group, **overrides: made.update(group=group, overrides=overrides),
    )
    monkeypatch.setattr(
        "mediaflow.kafka.clients.transactional_producer",
        lambda _kafka, tid: made.update(transactional_id=tid),
    )
    settings = Settings.from_env({"MEDIAFLOW_TOPIC_PREFIX": "p.", "MEDIAFLOW_INSTANCE_NAME": "a"})
    stage_clients = spec_for(Loop()).clients(settings)
    stage_clients.consumer()
    stage_clients.producer()
    assert made == {
        "group": "p.mediaflow-toy",
        "overrides": {"group.instance.id": "p.mediaflow-toy-a"},
        "transactional_id": "p.mediaflow-toy-a",
    }


def test_a_stage_without_transactions_keeps_dynamic_membership_and_a_plain_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: dict[str, object] = {}
    monkeypatch.setattr(
        "mediaflow.kafka.clients.consumer",
        lambda _kafka, group, **overrides: made.update(group=group, overrides=overrides),
    )
    monkeypatch.setattr("mediaflow.kafka.clients.producer", lambda _kafka: made.update(plain=True))
    stage_clients = spec_for(Loop(), transactional=False).clients(Settings())
    stage_clients.consumer()
    stage_clients.producer()
    assert made == {"group": "mediaflow-toy", "overrides": {}, "plain": True}


def test_a_metrics_port_in_use_stops_the_stage_naming_the_variables() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        loop = Loop()
        with pytest.raises(ConfigError) as raised:
            run_stage(spec_for(loop), Settings(metrics_port=port))
    assert f"cannot serve metrics on 127.0.0.1:{port}" in raised.value.message
    assert "MEDIAFLOW_METRICS_HOST and MEDIAFLOW_METRICS_PORT" in raised.value.message
    assert not loop.closed  # refused before the stage was built
