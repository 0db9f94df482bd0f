"""The one supervisor: restart a crash, stop all on a refused configuration, SIGTERM then
SIGKILL, SIGHUP passed on only to the children that reload with it.

The children are tiny Python processes: each writes ``start`` to its own file when it
starts, and ``ready`` once its signal handlers are in place.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from mediaflow.errors import EXIT_CONFIG, ConfigError
from mediaflow.supervisor import Child, Supervisor

QUICK = {"grace_s": 5.0, "restart_delay_s": 0.1, "poll_s": 0.02}


def child(tmp_path: Path, name: str, body: str = "", *, reloads: bool = False) -> Child:
    """A child that notes its start in ``<name>.log``, runs ``body``, then waits for SIGTERM."""
    log = tmp_path / f"{name}.log"
    code = (
        textwrap.dedent(
            f"""
        import signal, sys, time
        from pathlib import Path
        log = Path({str(log)!r})
        def note(text):
            with log.open("a") as handle:
                handle.write(text + "\\n")
        note("start")
        starts = log.read_text().count("start")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGTERM}})
        """
        )
        + textwrap.dedent(body)
        + '\nnote("ready")\nwhile True:\n    time.sleep(0.01)\n'
    )
    return Child(name, (sys.executable, "-c", code), reloads=reloads)


def lines(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.log"
    return path.read_text().split() if path.exists() else []


def all_ready(tmp_path: Path, *names: str) -> bool:
    return all("ready" in lines(tmp_path, name) for name in names)


async def until(condition, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_a_child_that_crashes_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    exited: list[int] = []
    supervisor = Supervisor(
        [
            child(tmp_path, "flaky", "if starts == 1:\n    sys.exit(3)\n"),
            child(tmp_path, "steady"),
        ],
        on_exit=exited.append,
        **QUICK,
    )

    async def scenario() -> int:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: lines(tmp_path, "flaky") == ["start", "start", "ready"])
        supervisor.stop()
        return await task

    assert asyncio.run(scenario()) == 0
    assert lines(tmp_path, "steady") == ["start", "ready"]
    assert supervisor.exit_codes == {"flaky": 0, "steady": 0}
    # on_exit heard of each process that went: the crash, then the two at the stop.
    assert len(exited) == len(set(exited)) == 3


def test_a_child_refusing_its_configuration_stops_every_child_and_nothing_restarts(
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(
        [
            child(tmp_path, "steady"),
            child(
                tmp_path,
                "misconfigured",
                # Once the other one can take SIGTERM:
                f"steady = Path({str(tmp_path / 'steady.log')!r})\n"
                "while not steady.exists() or 'ready' not in steady.read_text():\n"
                f"    time.sleep(0.01)\nsys.exit({EXIT_CONFIG})\n",
            ),
        ],
        noun="worker",
        **QUICK,
    )
    with pytest.raises(ConfigError) as raised:
        asyncio.run(supervisor.run())
    assert raised.value.message == (
        "the misconfigured worker refused its configuration (its message is above); "
        "every worker was stopped: fix the setting and start again"
    )
    assert lines(tmp_path, "misconfigured") == ["start"]
    assert supervisor.exit_codes == {"steady": 0, "misconfigured": EXIT_CONFIG}


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = child(tmp_path, "stubborn", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n")
    supervisor = Supervisor([stubborn, child(tmp_path, "polite")], **{**QUICK, "grace_s": 0.5})

    async def scenario() -> int:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: all_ready(tmp_path, "stubborn", "polite"))
        supervisor.stop()
        return await task

    assert asyncio.run(scenario()) == 1
    assert supervisor.exit_codes == {"stubborn": -9, "polite": 0}


def test_sighup_goes_only_to_the_children_that_reload_with_it(tmp_path: Path) -> None:
    reloader = child(
        tmp_path,
        "reloader",
        'signal.signal(signal.SIGHUP, lambda *_: note("reload"))\n'
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})\n",
        reloads=True,
    )
    # Without a handler SIGHUP would end this one, and it would be restarted.
    other = child(tmp_path, "other")
    supervisor = Supervisor([reloader, other], **QUICK)

    async def scenario() -> int:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: all_ready(tmp_path, "reloader", "other"))
        supervisor.reload()
        await until(lambda: "reload" in lines(tmp_path, "reloader"))
        supervisor.stop()
        return await task

    assert asyncio.run(scenario()) == 0
    assert lines(tmp_path, "other") == ["start", "ready"]
    assert lines(tmp_path, "reloader") == ["start", "ready", "reload"]


def test_a_reload_sent_while_a_child_starts_waits_for_its_handler(tmp_path: Path) -> None:
    # The child is slow to install its handler; SIGHUP comes before it does.
    reloader = child(
        tmp_path,
        "reloader",
        "time.sleep(0.5)\n"
        'signal.signal(signal.SIGHUP, lambda *_: note("reload"))\n'
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})\n",
        reloads=True,
    )
    exited: list[int] = []
    supervisor = Supervisor([reloader], on_exit=exited.append, **QUICK)

    async def scenario() -> int:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: lines(tmp_path, "reloader") == ["start"])
        supervisor.reload()
        await until(lambda: "reload" in lines(tmp_path, "reloader"))
        supervisor.stop()
        return await task

    assert asyncio.run(scenario()) == 0
    # Not ended by the early SIGHUP (so not restarted): delivered as the handler came.
    assert lines(tmp_path, "reloader") == ["start", "reload", "ready"]
    assert len(exited) == 1


def test_a_stop_sent_while_a_child_starts_waits_for_its_handler(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        f"open({str(tmp_path / 'slow.log')!r}, 'a').write('start\\n')\n"
        "time.sleep(0.5)\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})\n"
        "time.sleep(30)\n"
    )
    supervisor = Supervisor([Child("slow", (sys.executable, "-c", code))], **QUICK)

    async def scenario() -> int:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: lines(tmp_path, "slow") == ["start"])
        supervisor.stop()
        return await task

    # Stopped by its own handler (exit 0), not ended by SIGTERM's default action.
    assert asyncio.run(scenario()) == 0
    assert supervisor.exit_codes == {"slow": 0}
