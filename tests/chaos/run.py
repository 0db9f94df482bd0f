"""``make chaos``: thousands of webhooks through the whole pipeline while it is being broken.

``python -m tests.chaos.run --webhooks 5000 [--seed 11] [--timeout 900]``

One isolated run (:class:`simulator.pipeline.Run`: own topics, bucket,
projection database, ports) of every role as a child process, fed by a seeded
mix of webhooks at a steady rate, while a schedule of faults plays out:

* the fake W-API/CDN answer 5xx to 30 % of calls and hang on 5 % (the
  downloader's read timeout is short, so a hang costs seconds, not minutes);
* the downloader is SIGKILLed twice and the detector once, each restarted;
* the S3 server is stopped for 20 s, the Kafka broker for 15 s
  (``deploy/stack.sh down|up``: this disturbs everything else using the local
  stack while it lasts; both are started again whatever happens).

Then every role is stopped and :mod:`tests.chaos.audit` accounts for every
media of every webhook answered 200, reading only the event log, the
projection and the bucket, and prints the table. Exit 0 = nothing lost,
nothing duplicated, every object's bytes right, no multipart upload open.

A role that dies on its own is restarted (as a supervisor would) and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.tenants import TenantRegistry
from simulator.demo import local_environment, samples_by_media_id
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import Pipeline, Run, terminal_rows
from simulator.report import TERMINAL
from simulator.sender import SendSummary, send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import WebhookFactory
from tests.chaos.audit import (
    Tally,
    projection_rows,
    read_bucket,
    read_media_events,
    render,
    tally,
)

STACK = REPO_ROOT / "deploy" / "stack.sh"


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One fault at ``at_s`` seconds after the first webhook is sent.

    ``action`` is ``kill`` / ``restart`` (a role: SIGKILL / start it again) or
    ``down`` / ``up`` (a stack service: ``kafka`` or ``s3``).
    """

    at_s: float
    action: str
    target: str


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What a chaos run sends and breaks.

    Attributes:
        webhooks: how many webhooks to send.
        rate: webhooks per second offered.
        steps: the fault schedule.
        error_rate: share of W-API/CDN calls answered 5xx.
        hang_rate: share of W-API/CDN calls never answered.
        read_timeout_s: the downloader's read timeout (how long a hang costs).
        max_media_bytes: the largest sample media (keeps the run lean).
        seed: same seed, same webhooks and media.
        timeout_s: longest wait for every media to become terminal.
    """

    webhooks: int
    rate: float
    steps: tuple[Step, ...]
    error_rate: float = 0.30
    hang_rate: float = 0.05
    read_timeout_s: float = 2.0
    max_media_bytes: int = 48_000
    seed: int = 11
    timeout_s: float = 900.0


def full_plan(webhooks: int = 5000, seed: int = 11, timeout_s: float = 900.0) -> Plan:
    """The long run: two downloader kills, one detector kill, S3 down 20 s, Kafka down 15 s."""
    rate = 40.0
    span = webhooks / rate
    steps = (
        Step(0.10 * span, "kill", "downloader"),
        Step(0.10 * span + 3, "restart", "downloader"),
        Step(0.20 * span, "kill", "detector"),
        Step(0.20 * span + 3, "restart", "detector"),
        Step(0.35 * span, "down", "s3"),
        Step(0.35 * span + 20, "up", "s3"),
        Step(0.60 * span, "down", "kafka"),
        Step(0.60 * span + 15, "up", "kafka"),
        Step(0.85 * span, "kill", "downloader"),
        Step(0.85 * span + 3, "restart", "downloader"),
    )
    return Plan(webhooks, rate, steps, seed=seed, timeout_s=timeout_s)


def short_plan(webhooks: int = 300, seed: int = 5) -> Plan:
    """The variant inside ``make test``: process kills and an S3 outage, Kafka left alone."""
    steps = (
        Step(3, "kill", "downloader"),
        Step(5, "restart", "downloader"),
        Step(7, "kill", "detector"),
        Step(9, "restart", "detector"),
        Step(10, "down", "s3"),
        Step(18, "up", "s3"),
    )
    return Plan(webhooks, 25.0, steps, seed=seed, timeout_s=150.0)


class ChaosPipeline(Pipeline):
    """A :class:`Pipeline` whose roles can be SIGKILLed, restarted and supervised."""

    def __init__(self, run: Run) -> None:
        """Prepare every role of ``run``."""
        super().__init__(run)
        self.killed: set[str] = set()
        self.unexpected_exits: list[tuple[str, int]] = []

    def kill(self, role: str) -> None:
        """SIGKILL ``role`` and remember that its exit was on purpose."""
        self.killed.add(role)
        super().kill(role)

    def restart(self, role: str) -> None:
        """Start ``role`` again; an exit from now on is unexpected."""
        super().restart(role)
        self.killed.discard(role)

    def supervise(self) -> None:
        """Restart every role that exited without being killed on purpose."""
        for role, code in self.dead().items():
            if role not in self.killed:
                self.unexpected_exits.append((role, code))
                print(f"  ! {role} exited on its own with code {code}; restarting it")
                print("    " + self.tail(role, 5).replace("\n", "\n    "))
                self.restart(role)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """What a chaos run found."""

    run: Run
    tally: Tally
    summary: SendSummary
    unexpected_exits: tuple[tuple[str, int], ...]
    exit_codes: Mapping[str, int]

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, corrupted or left open (see :attr:`Tally.ok`)."""
        return self.tally.ok


def stack(action: str, service: str) -> None:
    """``deploy/stack.sh <action> <service>``; raises if it fails."""
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run([str(STACK), action, service], check=True, env=env, cwd=REPO_ROOT)


def _tenant_secrets(
    settings: Settings, env: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    registry = TenantRegistry.load(settings.tenants_file, env)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    return secrets, tokens


def _play(
    pipeline: ChaosPipeline, steps: Sequence[Step], started: float, done: threading.Event
) -> None:
    """Run the schedule; whatever happens, every stopped service is started again."""
    down: set[str] = set()
    try:
        for step in sorted(steps, key=lambda s: s.at_s):
            while time.monotonic() < started + step.at_s:
                pipeline.supervise()
                time.sleep(0.2)
            print(f"  t={time.monotonic() - started:6.1f}s  {step.action} {step.target}")
            if step.action == "kill":
                pipeline.kill(step.target)
            elif step.action == "restart":
                pipeline.restart(step.target)
            elif step.action == "down":
                down.add(step.target)
                stack("down", step.target)
            elif step.action == "up":
                stack("up", step.target)
                down.discard(step.target)
            else:
                raise ValueError(f"unknown chaos action {step.action!r}")
        while not done.is_set():
            pipeline.supervise()
            time.sleep(0.2)
    finally:
        for service in sorted(down):
            stack("up", service)


def _wait_terminal(pipeline: ChaosPipeline, media_ids: set[str], timeout_s: float) -> int:
    store = pipeline.run.open_store()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            pipeline.supervise()
            _rows, done = terminal_rows(store, media_ids, TERMINAL)
            left = deadline - time.monotonic()
            print(f"\r  terminal {done}/{len(media_ids)} ({max(0, left):.0f} s left) ", end="")
            if done == len(media_ids) or left <= 0:
                print()
                return done
            time.sleep(1.0)
    finally:
        store.close()


def run_chaos(
    plan: Plan,
    *,
    environ: Mapping[str, str] | None = None,
    inspect: Callable[[ChaosPipeline], None] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Result:
    """Run ``plan`` end to end and audit the outcome.

    Args:
        plan: what to send and break.
        environ: the environment (``os.environ`` plus ``deploy/local.env`` when omitted).
        inspect: called with the live pipeline once every media is terminal,
            before the roles stop (the secrets test reads metrics and the API there).
        overrides: more settings for the run (``Run.create`` overrides).
    """
    env = local_environment(os.environ if environ is None else environ)
    secrets, tokens = _tenant_secrets(Settings.from_env(env), env)
    faults = Faults(
        error_rate=plan.error_rate,
        status_mix={500: 0.5, 502: 0.25, 503: 0.25},
        hang_rate=plan.hang_rate,
        hang_s=60.0,
        seed=plan.seed,
        targets=frozenset({"wapi", "cdn", "files"}),
    )
    library = MediaLibrary(plan.seed, max_size=plan.max_media_bytes)
    with SimulatorThread(library, faults, tokens) as sim:
        run = Run.create(
            "chaos",
            wapi_url=sim.wapi_url,
            cdn_url=sim.cdn_url,
            environ=env,
            read_timeout_s=str(plan.read_timeout_s),
            **dict(overrides or {}),
        )
        factory = WebhookFactory(
            library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=plan.seed
        )
        batch = factory.mixed(plan.webhooks)
        print(f"chaos run {run.run_id}: {len(batch)} webhooks at {plan.rate:.0f}/s")
        print(f"  logs in {run.directory}/")
        print(f"  faults: {plan.error_rate:.0%} 5xx, {plan.hang_rate:.0%} hangs on W-API/CDN/files")
        run.prepare()
        pipeline = ChaosPipeline(run)
        with pipeline:
            done = threading.Event()
            holder: list[SendSummary] = []

            def send() -> None:
                try:
                    holder.append(
                        asyncio.run(
                            send_webhooks(
                                batch, base_url=run.webhook_url, secrets=secrets, rate=plan.rate
                            )
                        )
                    )
                finally:
                    done.set()

            sender = threading.Thread(target=send, name="chaos-sender", daemon=True)
            started = time.monotonic()
            sender.start()
            _play(pipeline, plan.steps, started, done)
            sender.join()
            summary = holder[0]
            print(summary.table())
            expected = summary.media_ids() | summary.invalid_media_ids()
            _wait_terminal(pipeline, expected, plan.timeout_s)
            if inspect is not None:
                inspect(pipeline)
        exit_codes = pipeline.stop()
        samples = {m: s.sha256_hex for m, s in samples_by_media_id(summary).items()}
    events, undecodable = read_media_events(run.settings)
    store = run.open_store()
    try:
        rows = projection_rows(store)
    finally:
        store.close()
    bucket = read_bucket(run.settings)
    result = tally(expected, events, rows, bucket, samples, undecodable=undecodable)
    return Result(run, result, summary, tuple(pipeline.unexpected_exits), exit_codes)


def report(result: Result) -> str:
    """The chaos table plus the run's own troubles."""
    lines = [render(result.tally, len(result.summary.accepted))]
    refused = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(_refusals(result).items()))
    lines.append(f"webhooks not accepted by status: {refused or 'none'}")
    lines += [f"ROLE DIED ON ITS OWN: {r} (exit {c})" for r, c in result.unexpected_exits]
    lines.append(f"exit codes at SIGTERM: {dict(result.exit_codes)}")
    lines.append(f"logs: {result.run.directory}/")
    return "\n".join(lines)


def _refusals(result: Result) -> dict[int, int]:
    counts: dict[int, int] = {}
    for delivery in result.summary.rejected:
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the full plan, print the table; 0 when nothing was lost."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=5000, help="webhooks to send")
    parser.add_argument("--seed", type=int, default=11, help="same seed, same webhooks")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait, seconds")
    parser.add_argument("--short", action="store_true", help="the make-test variant instead")
    args = parser.parse_args(argv)
    if args.short:
        plan = short_plan(args.webhooks)
    else:
        plan = full_plan(args.webhooks, args.seed, args.timeout)
    result = run_chaos(plan)
    print()
    print(report(result))
    print("RESULT:", "nothing lost, nothing duplicated" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
