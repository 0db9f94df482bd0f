"""``make chaos``: thousands of webhooks through the whole pipeline while it is being broken.

``python -m tests.chaos.run --webhooks 5000 [--seed 11] [--timeout 900]``

One isolated run (:class:`simulator.pipeline.Run`: own topics, bucket,
projection database, ports) of every role as a child process, fed by a seeded
mix of webhooks at a steady rate, while a schedule of faults plays out:

* the fake W-API/CDN answer 5xx or 429 to 30 % of calls and hang on 5 % (the
  downloader's read timeout is short, so a hang costs seconds, not minutes);
  every 429 and 503 carries a hostile ``Retry-After`` (``1e12``, ``inf``,
  ``nan``, a 30-digit number, a date in the year 9999...);
* W-API answers 5 % of its calls ``{"error": true}`` with a lone surrogate in
  the message, and redirects 5 % to another origin (a trap that records what
  reaches it); the downloader must fall back to the CDN for both;
* some webhooks are built to fan out (more media than
  ``MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK``): each must become one
  ``too_many_media`` dead letter, none of its media downloaded;
* the downloader is SIGKILLed twice and the detector once, each restarted;
  the downloader runs 20 s with a wrong S3 secret, then is restarted with
  the right one;
* the S3 server is stopped for 20 s (``deploy/stack.sh down|up``, on the
  stack ``MEDIAFLOW_STACK_DIR`` names: this disturbs everything else using
  that stack while it lasts), Kafka for 15 s; both are started again
  whatever happens;
* on the three-node cluster of ``deploy/cluster.sh`` (the full run's
  default; topics replicated three times, ``min.insync.replicas=2``, two
  detectors and two downloaders): the node leading a webhook partition is
  SIGKILLed and started again, the three nodes restart in turn, the active
  controller is SIGKILLed and started again (:mod:`tests.chaos.cluster`).

The retry tiers are short (seconds) but many: a media meant to be stored
that is dead-lettered (``retries_exhausted`` included) is a defect, not bad
luck (see :data:`CHAOS_RETRY_DELAYS_S`).

Then every role is stopped and two audits account for every media of every
webhook answered 200: :mod:`tests.chaos.audit` (the event log, the
projection, the bucket and the dead-letter topic, against the media the
pipeline's parser finds) and :mod:`tests.chaos.oracle` (the simulator's
ledger, built with the webhooks, against the bucket, the event log and the
dead-letter topic, read with no pipeline code). Exit 0 = both agree that
nothing was lost or duplicated, every object's bytes are right, no multipart
upload is open, every media and fan-out webhook ended as meant; no secret
reached the trap, and every planned fault fired.

A role that dies on its own is restarted (as a supervisor would) and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.media_state import MediaRow
from mediaflow.process import settings_env
from mediaflow.tenants import TenantRegistry
from simulator import ledger
from simulator.demo import local_environment, samples_by_media_id
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import ROLES, Pipeline, Run, terminal_rows
from simulator.report import TERMINAL
from simulator.sender import SendSummary, send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import Webhook, WebhookFactory
from tests.chaos import oracle
from tests.chaos.audit import (
    FanOut,
    Intended,
    Tally,
    projection_rows,
    read_bucket,
    read_dead_letters,
    read_media_events,
    render,
    tally,
)
from tests.chaos.cluster import Cluster, ClusterChaos, ClusterFault
from tests.support.trap import Trap, trap_in_thread

STACK = REPO_ROOT / "deploy" / "stack.sh"
COPIED = ("detector", "downloader")
"""The roles a plan with ``copies`` runs several of."""

CHAOS_RETRY_DELAYS_S = (1, 2, 4, 4, 4, 4, 4, 4, 4)
"""Nine short tiers, so ten attempts.

With 30 % errors and 5 % hangs on every endpoint, a media that only one
endpoint serves (Evolution's from the CDN, Z-API's from its link) fails an
attempt about one time in three, and all ten about once in 56,000 (a 5,000
webhook run holds some 550 such media). With the three tiers the other runs
use, such media were dead-lettered ``retries_exhausted`` in most runs (8 in a
5,000-webhook run, 1 in the short one), and a media meant to be stored could
not be told from a defect. The longest tier also caps every ``Retry-After``: 4 s.
"""

STATUS_MIX = {500: 0.4, 502: 0.2, 503: 0.2, 429: 0.2}
"""The error statuses the fake endpoints answer, by weight."""

HOSTILE_RETRY_AFTER = (
    "1e12",
    "inf",
    "nan",
    "-1",
    "9" * 30,
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "1",
)
"""``Retry-After`` values of every 429 and 503: a broken provider's, and one sane one."""

SURROGATE_MESSAGE = "quota \ud800 exceeded"
"""W-API's ``{"error": true}`` message: valid JSON whose decoded text holds a lone surrogate."""

WRONG_S3_SECRET = {"MEDIAFLOW_S3_SECRET_KEY": "not-the-chaos-secret"}
"""The downloader's setting while it runs misconfigured."""


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One fault at ``at_s`` seconds after the first webhook is sent.

    ``action`` is ``kill`` / ``terminate`` / ``restart`` (a role: SIGKILL /
    SIGTERM and wait until it drained / start it again, with ``environ``
    overriding its settings) or ``down`` / ``up`` (a stack service: ``kafka``
    or ``s3``; on a cluster, ``kafka`` is all three nodes). A ``terminate``
    holds the schedule until the role is gone (up to its 20 s grace period
    when its work cannot finish). On a cluster, ``kill-node`` SIGKILLs a
    node (target ``leader``: of the webhook topic's partition 0;
    ``controller``: the active controller), ``start-node`` starts the node
    killed last and ``rolling`` restarts all three in turn; each holds the
    schedule until every partition is in sync again.
    """

    at_s: float
    action: str
    target: str
    environ: tuple[tuple[str, str], ...] = ()


def wrong_s3_secret(at_s: float, seconds: float, *, then: str = "terminate") -> tuple[Step, ...]:
    """The downloader restarted with a wrong S3 secret, ``seconds`` later with the right one.

    The healthy copy is terminated (it leaves its group, so the misconfigured
    one owns the partitions at once); the misconfigured one ends by ``then``:
    ``terminate`` (an operator's restart: its grace period passes, as its
    work waits for the storage) or ``kill``.
    """
    wrong = tuple(WRONG_S3_SECRET.items())
    return (
        Step(at_s, "terminate", "downloader"),
        Step(at_s, "restart", "downloader", wrong),
        Step(at_s + seconds, then, "downloader"),
        Step(at_s + seconds, "restart", "downloader"),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What a chaos run sends and breaks.

    Attributes:
        webhooks: how many webhooks to send.
        rate: webhooks per second offered.
        steps: the fault schedule.
        error_rate: share of W-API/CDN calls answered 5xx or 429
            (each 429 and 503 with a hostile ``Retry-After``).
        hang_rate: share of W-API/CDN calls never answered.
        provider_error_rate: share of W-API calls answered ``{"error": true}``
            with a lone surrogate in the message.
        redirect_rate: share of W-API calls redirected to another origin.
        fanouts: webhooks built to fan out, spread through the batch.
        fanout_media: the media each of them holds.
        expired: W-API messages whose media expire on every host before they
            are sent (the ledger's fate ``expired``: one dead letter each).
        read_timeout_s: the downloader's read timeout (how long a hang costs).
        max_media_bytes: the largest sample media (keeps the run lean).
        seed: same seed, same webhooks and media.
        timeout_s: longest wait for every media to become terminal.
        retry_delays_s: the retry tiers.
        cluster: run on the three-node cluster of ``deploy/cluster.sh`` (topics
            replicated three times, ``min.insync.replicas=2``) instead of the
            stack's single broker.
        copies: copies of the detector and of the downloader (distinct
            instance names, one consumer group), so rebalances happen under
            the faults too.
    """

    webhooks: int
    rate: float
    steps: tuple[Step, ...]
    error_rate: float = 0.30
    hang_rate: float = 0.05
    provider_error_rate: float = 0.05
    redirect_rate: float = 0.05
    fanouts: int = 0
    fanout_media: int = 24
    expired: int = 0
    read_timeout_s: float = 2.0
    max_media_bytes: int = 48_000
    seed: int = 11
    timeout_s: float = 900.0
    retry_delays_s: tuple[int, ...] = CHAOS_RETRY_DELAYS_S
    cluster: bool = False
    copies: int = 1


def full_plan(
    webhooks: int = 5000, seed: int = 11, timeout_s: float = 900.0, *, cluster: bool = True
) -> Plan:
    """The long run: kills, S3 down 20 s, a wrong S3 secret 20 s, Kafka down 15 s, 10 fan-outs.

    On the cluster (the default), also: the leader of a webhook partition
    SIGKILLed and restarted, a rolling restart of the three nodes, the
    active controller SIGKILLed and restarted; two detectors and two
    downloaders throughout.
    """
    # 20/s: the cluster faults need the time (a rolling restart holds the
    # schedule while each node boots and catches up, a minute on a loaded
    # two-core machine); every fault then falls while webhooks still arrive.
    rate = 20.0 if cluster else 40.0
    span = webhooks / rate
    # The wrong secret's end holds the schedule up to 20 s (the misconfigured
    # downloader's grace period): nothing is due in the 40 s after it starts.
    steps = (
        Step(0.08 * span, "kill", "downloader"),
        Step(0.08 * span + 3, "restart", "downloader"),
        Step(0.16 * span, "kill", "detector"),
        Step(0.16 * span + 3, "restart", "detector"),
        Step(0.24 * span, "down", "s3"),
        Step(0.24 * span + 20, "up", "s3"),
        *wrong_s3_secret(0.44 * span, 20),
        Step(0.44 * span + 45, "down", "kafka"),
        Step(0.44 * span + 60, "up", "kafka"),
        Step(0.96 * span, "kill", "downloader"),
        Step(0.96 * span + 3, "restart", "downloader"),
    )
    if cluster:
        steps += (
            Step(0.32 * span, "kill-node", "leader"),
            Step(0.32 * span + 10, "start-node", "killed"),
            # After Kafka's full outage (0.44 span + 60 s) is over.
            Step(0.76 * span, "rolling", "nodes"),
            Step(0.90 * span, "kill-node", "controller"),
            Step(0.90 * span + 8, "start-node", "killed"),
        )
    copies = 2 if cluster else 1
    return Plan(
        webhooks,
        rate,
        steps,
        fanouts=10,
        expired=10,
        seed=seed,
        timeout_s=timeout_s,
        cluster=cluster,
        copies=copies,
    )


def short_plan(webhooks: int = 300, seed: int = 5) -> Plan:
    """The variant inside ``make test``, on the cluster: kills, a node killed, an S3 outage.

    A wrong S3 secret 6 s, the detector SIGKILLed, the leader of a webhook
    partition SIGKILLed and started again, S3 down 8 s, two fan-outs.
    """
    # Both kills at 7 s. The restarted copies keep their instance names, so as
    # static group members they take their partitions back without waiting
    # for the killed ones' sessions to expire. The node dies after the wrong
    # secret is over: a group coordinator moving away must not keep the
    # misconfigured downloader from its partitions while it is meant to wait.
    steps = (
        *wrong_s3_secret(1, 6, then="kill"),
        Step(7, "kill", "detector"),
        Step(8, "kill-node", "leader"),
        Step(9, "restart", "detector"),
        Step(10, "down", "s3"),
        Step(12, "start-node", "killed"),
        Step(18, "up", "s3"),
    )
    return Plan(
        webhooks,
        25.0,
        steps,
        fanouts=2,
        fanout_media=12,
        expired=2,
        seed=seed,
        timeout_s=150.0,
        cluster=True,
    )


class ChaosPipeline(Pipeline):
    """A :class:`Pipeline` whose roles can be SIGKILLed, restarted and supervised."""

    def __init__(self, run: Run, roles: Iterable[str] = ROLES) -> None:
        """Prepare ``roles`` of ``run``."""
        super().__init__(run, roles)
        self.killed: set[str] = set()
        self.unexpected_exits: list[tuple[str, int]] = []
        self._overrides: dict[str, Mapping[str, str]] = {}

    def kill(self, role: str) -> None:
        """SIGKILL ``role`` and remember that its exit was on purpose."""
        self.killed.add(role)
        super().kill(role)

    def terminate(self, role: str, timeout_s: float = 30.0) -> int:
        """SIGTERM ``role``, wait until it is gone, and remember that its exit was on purpose."""
        self.killed.add(role)
        return super().terminate(role, timeout_s)

    def restart(self, role: str, environ: Mapping[str, str] | None = None) -> None:
        """Start ``role`` again (``environ`` overriding its settings until the next restart).

        An exit from now on is unexpected.
        """
        self._overrides[role] = dict(environ or {})
        super().restart(role, environ)
        self.killed.discard(role)

    def supervise(self) -> None:
        """Restart every role that exited without being killed on purpose."""
        for role, code in self.dead().items():
            if role not in self.killed:
                self.unexpected_exits.append((role, code))
                print(f"  ! {role} exited on its own with code {code}; restarting it")
                print("    " + self.tail(role, 5).replace("\n", "\n    "))
                self.restart(role, self._overrides.get(role))


@dataclasses.dataclass(frozen=True, slots=True)
class Played:
    """How often each injected fault fired, from the simulator's call log, the trap and the logs.

    Attributes:
        hostile_retry_after: 429 and 503 answers (each with a hostile ``Retry-After``).
        surrogate_errors: W-API ``{"error": true}`` answers (a lone surrogate in each message).
        redirects: W-API calls redirected to the trap's origin.
        trap_requests: requests that reached the trap.
        trap_leaks: of those, the ones carrying a W-API token or a media key.
        credential_waits: downloader log lines waiting for S3 to accept its credentials.
    """

    hostile_retry_after: int
    surrogate_errors: int
    redirects: int
    trap_requests: int
    trap_leaks: int
    credential_waits: int


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """What a chaos run found."""

    run: Run
    plan: Plan
    tally: Tally
    summary: SendSummary
    played: Played
    unexpected_exits: tuple[tuple[str, int], ...]
    exit_codes: Mapping[str, int]
    verdict: oracle.Verdict
    cluster_faults: tuple[Resumed, ...] = ()

    @property
    def unplayed(self) -> list[str]:
        """The planned faults that never fired: the run proves nothing about them."""
        plan, played = self.plan, self.played
        wrong_secret = any(s.environ for s in plan.steps)
        checks = (
            ("hostile Retry-After", plan.error_rate > 0, played.hostile_retry_after),
            ("surrogate error messages", plan.provider_error_rate > 0, played.surrogate_errors),
            ("cross-origin W-API redirects", plan.redirect_rate > 0, played.redirects),
            ("fan-out webhooks", plan.fanouts > 0, self.tally.fanouts),
            ("wrong S3 secret", wrong_secret, played.credential_waits),
        )
        return [name for name, planned, fired in checks if planned and not fired]

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, corrupted, left open or ended otherwise than meant
        (see :attr:`Tally.ok`), the independent oracle agrees (:attr:`oracle.Verdict.ok`),
        no secret reached the trap, and every planned fault fired."""
        return (
            self.tally.ok and self.verdict.ok and self.played.trap_leaks == 0 and not self.unplayed
        )


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


def _clients(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    registry = TenantRegistry.load(settings.tenants_file, env)
    return {i: t.client_id for i, t in registry.tenants.items()}


def consult_oracle(
    run: Run, batch: Sequence[Webhook], summary: SendSummary, clients: Mapping[str, str]
) -> oracle.Verdict:
    """Write the ledger with what the receiver accepted, then let the oracle read everything."""
    accepted: dict[str | None, bool] = {}
    for delivery in summary.deliveries:
        key = delivery.webhook.message_id
        accepted[key] = accepted.get(key, False) or delivery.status == 200
    path = run.directory / "ledger.jsonl"
    ledger.write(path, ledger.build(batch, clients, accepted))
    layout = load_layout(run.settings.kafka)
    s3 = run.settings.s3
    outputs = oracle.read_outputs(
        run.settings.kafka.bootstrap_servers,
        layout.media_events,
        layout.dead_letters,
        oracle.S3Access(
            s3.endpoint_url, s3.region, s3.bucket, s3.access_key.reveal(), s3.secret_key.reveal()
        ),
    )
    return oracle.audit(oracle.read_ledger(path), outputs)


def _play(
    pipeline: ChaosPipeline,
    steps: Sequence[Step],
    started: float,
    done: threading.Event,
    nodes: ClusterChaos | None,
) -> None:
    """Run the schedule; whatever happens, every stopped service and node is started again."""
    down: set[str] = set()
    try:
        for step in sorted(steps, key=lambda s: s.at_s):
            while time.monotonic() < started + step.at_s:
                pipeline.supervise()
                time.sleep(0.2)
            extra = " with " + ", ".join(k for k, _ in step.environ) if step.environ else ""
            print(f"  t={time.monotonic() - started:6.1f}s  {step.action} {step.target}{extra}")
            if step.action == "kill":
                pipeline.kill(step.target)
            elif step.action == "terminate":
                pipeline.terminate(step.target)
            elif step.action == "restart":
                pipeline.restart(step.target, dict(step.environ))
            elif step.action == "down":
                if step.target == "kafka" and nodes is not None:
                    nodes.settle()
                down.add(step.target)
                service(step.target, "down", nodes)
            elif step.action == "up":
                service(step.target, "up", nodes)
                down.discard(step.target)
            elif nodes is not None and step.action == "kill-node":
                nodes.kill(step.target)
            elif nodes is not None and step.action == "start-node":
                nodes.restart()
            elif nodes is not None and step.action == "rolling":
                nodes.rolling()
            else:
                raise ValueError(f"unknown chaos action {step.action!r}")
        while not done.is_set() or (nodes is not None and nodes.starting()):
            pipeline.supervise()
            time.sleep(0.2)
    finally:
        for name in sorted(down):
            service(name, "up", nodes)
        if nodes is not None:
            nodes.restore()


def service(name: str, action: str, nodes: ClusterChaos | None) -> None:
    """Stop or start a stack service; on a cluster, ``kafka`` is its three nodes."""
    if name != "kafka" or nodes is None:
        stack(action, name)
    elif action == "up":
        nodes.cluster.up()
    else:
        nodes.cluster.down()


def _wait_terminal(pipeline: ChaosPipeline, media_ids: Iterable[str], timeout_s: float) -> int:
    media_ids = set(media_ids)
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


def _wait_fanouts_refused(pipeline: ChaosPipeline, fanouts: int, timeout_s: float) -> None:
    """Wait until the dead-letter topic holds a ``too_many_media`` record per fan-out webhook."""
    deadline = time.monotonic() + timeout_s
    while fanouts and time.monotonic() < deadline:
        pipeline.supervise()
        kinds = [d.kind for d in read_dead_letters(pipeline.run.settings, timeout_s=30)]
        if kinds.count("too_many_media") >= fanouts:
            return
        time.sleep(1.0)


def with_fanouts(batch: list[Webhook], factory: WebhookFactory, plan: Plan) -> list[Webhook]:
    """``batch`` with ``plan.fanouts`` fan-out webhooks spread through it (none first or last)."""
    out = list(batch)
    for index in range(plan.fanouts, 0, -1):
        out.insert(index * len(batch) // (plan.fanouts + 1), factory.wapi_fanout(plan.fanout_media))
    return out


def with_expired(batch: list[Webhook], faults: Faults, plan: Plan) -> list[Webhook]:
    """``batch`` with ``plan.expired`` W-API messages' media expired everywhere, fate ``expired``.

    W-API answers their download with an error and the CDN with 410 on every
    request (before any random fault), so each is meant to end as one
    ``expired`` dead letter, never stored.
    """
    # Messages sent once only: a redelivered webhook of a media that fails for good
    # is dead-lettered once per delivery (nothing deduplicates dead letters), which
    # the oracle rightly counts as a duplicate (see docs/operations.md).
    deliveries = Counter(h.message_id for h in batch)
    chosen: list[str] = []
    for hook in batch:
        if len(chosen) == plan.expired:
            break
        single = hook.provider == "wapi" and hook.fate == ledger.STORE and len(hook.media) == 1
        if single and hook.message_id and deliveries[hook.message_id] == 1:
            chosen.append(hook.message_id)
    faults.expired.update(h.media[0].cdn_id for h in batch if h.message_id in chosen)
    return [dataclasses.replace(h, fate="expired") if h.message_id in chosen else h for h in batch]


def intended(summary: SendSummary) -> Intended:
    """What each accepted webhook was built to become (fan-out media are not expected singly)."""
    fanouts = tuple(
        FanOut(d.webhook.message_id or "", d.webhook.body, frozenset(d.media_ids))
        for d in summary.accepted
        if d.webhook.kind == "fanout"
    )
    fanned = frozenset(m for f in fanouts for m in f.media_ids)
    # Built to fail on download (expired): downloadable, but never to be stored.
    failing = frozenset(
        m
        for d in summary.accepted
        if d.webhook.fate not in (ledger.STORE, "too_many_media")
        for m in d.media_ids
    )
    return Intended(
        store=frozenset(summary.media_ids()) - fanned - failing,
        dead=(frozenset(summary.invalid_media_ids()) | failing) - fanned,
        fanouts=fanouts,
    )


def credential_waits(log: Path) -> int:
    """Lines of a downloader log waiting for the storage to accept its credentials."""
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") == "storage_unavailable_waiting"
            and entry.get("cause") == "credentials"
        ):
            count += 1
    return count


def _played(sim: SimulatorThread, trap: Trap, secrets: Iterable[str], log: Path) -> Played:
    calls = sim.calls.all()
    return Played(
        hostile_retry_after=sum(
            1 for c in calls if c.outcome == "error" and c.status in (429, 503)
        ),
        surrogate_errors=sum(
            1 for c in calls if c.target == "wapi" and c.outcome == "provider_error" and c.media_id
        ),
        redirects=sum(1 for c in calls if c.target == "wapi" and c.outcome == "redirect"),
        trap_requests=len(trap.received),
        trap_leaks=len(trap.leaked(secrets)),
        credential_waits=credential_waits(log),
    )


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
    cluster = None
    if plan.cluster:
        cluster = Cluster(env)
        cluster.up()
        env.update(
            MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap, MEDIAFLOW_TOPICS_PROFILE="cluster"
        )
    secrets, tokens = _tenant_secrets(Settings.from_env(env), env)
    library = MediaLibrary(plan.seed, max_size=plan.max_media_bytes)
    with trap_in_thread() as (trap, trap_url):
        faults = Faults(
            error_rate=plan.error_rate,
            status_mix=dict(STATUS_MIX),
            retry_after_values=HOSTILE_RETRY_AFTER,
            hang_rate=plan.hang_rate,
            hang_s=60.0,
            provider_error_rate=plan.provider_error_rate,
            provider_error_message=SURROGATE_MESSAGE,
            redirect_to=trap_url,
            redirect_rate=plan.redirect_rate,
            seed=plan.seed,
            targets=frozenset({"wapi", "cdn", "files"}),
        )
        with SimulatorThread(library, faults, tokens) as sim:
            result = _run_with(plan, env, secrets, sim, faults, trap, inspect, overrides, cluster)
    return result


def _run_with(
    plan: Plan,
    env: Mapping[str, str],
    secrets: Mapping[str, str],
    sim: SimulatorThread,
    faults: Faults,
    trap: Trap,
    inspect: Callable[[ChaosPipeline], None] | None,
    overrides: Mapping[str, str] | None,
    cluster: Cluster | None,
) -> Result:
    run = Run.create(
        "chaos",
        wapi_url=sim.wapi_url,
        cdn_url=sim.cdn_url,
        retry_delays_s=plan.retry_delays_s,
        environ=env,
        read_timeout_s=str(plan.read_timeout_s),
        **dict(overrides or {}),
    )
    factory = WebhookFactory(
        sim.library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=plan.seed
    )
    batch = with_expired(with_fanouts(factory.mixed(plan.webhooks), factory, plan), faults, plan)
    clients = _clients(run.settings, env)
    # The ledger as generated, before anything is sent; rewritten with what was accepted.
    ledger.write(run.directory / "ledger.jsonl", ledger.build(batch, clients))
    print(f"chaos run {run.run_id}: {len(batch)} webhooks at {plan.rate:.0f}/s")
    print(f"  logs in {run.directory}/")
    print(
        f"  faults: {plan.error_rate:.0%} 5xx/429 (hostile Retry-After), "
        f"{plan.hang_rate:.0%} hangs on W-API/CDN/files; W-API {plan.provider_error_rate:.0%} "
        f"surrogate errors, {plan.redirect_rate:.0%} cross-origin redirects; "
        f"{plan.fanouts} fan-out webhooks; retry tiers {plan.retry_delays_s} s"
    )
    print(f"  kafka {run.settings.kafka.bootstrap_servers}, s3 {run.settings.s3.endpoint_url}")
    run.prepare()
    copies = tuple(f"{role}@{n}" for n in range(2, plan.copies + 1) for role in COPIED)
    pipeline = ChaosPipeline(run, (*ROLES, *copies))
    nodes = None
    if cluster is not None:
        specs = load_layout(run.settings.kafka).specs
        nodes = ClusterChaos(cluster, specs, settings_env(run.settings, run.environ))
        print(f"  cluster of 3 nodes; copies: {', '.join(copies) or 'none'}")
    with pipeline:
        summary = _send_under_faults(pipeline, plan, batch, secrets, nodes)
        print(summary.table())
        meant = intended(summary)
        _wait_terminal(pipeline, meant.media, plan.timeout_s)
        _wait_fanouts_refused(pipeline, len(meant.fanouts), timeout_s=60.0)
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
    dead_letters = read_dead_letters(run.settings)
    result = tally(
        meant,
        events,
        rows,
        bucket,
        samples,
        dead_letters=dead_letters,
        undecodable=undecodable,
    )
    verdict = consult_oracle(run, batch, summary, clients)
    resumed = tuple(resumption(f, summary, rows) for f in (nodes.faults if nodes else ()))
    keys = [m.media_key_b64 for hook in batch for m in hook.media]
    played = _played(sim, trap, [*secrets.values(), *keys], pipeline.log_path("downloader"))
    return Result(
        run,
        plan,
        result,
        summary,
        played,
        tuple(pipeline.unexpected_exits),
        exit_codes,
        verdict,
        resumed,
    )


def _send_under_faults(
    pipeline: ChaosPipeline,
    plan: Plan,
    batch: Sequence[Webhook],
    secrets: Mapping[str, str],
    nodes: ClusterChaos | None,
) -> SendSummary:
    """Send ``batch`` at the plan's rate while its fault schedule plays out."""
    done = threading.Event()
    holder: list[SendSummary] = []

    def send() -> None:
        try:
            holder.append(
                asyncio.run(
                    send_webhooks(
                        batch, base_url=pipeline.run.webhook_url, secrets=secrets, rate=plan.rate
                    )
                )
            )
        finally:
            done.set()

    sender = threading.Thread(target=send, name="chaos-sender", daemon=True)
    started = time.monotonic()
    sender.start()
    _play(pipeline, plan.steps, started, done, nodes)
    sender.join()
    return holder[0]


@dataclasses.dataclass(frozen=True, slots=True)
class Resumed:
    """How the pipeline came through one cluster fault.

    Attributes:
        fault: the fault as it played.
        accepted_after_s: from the fault to the first webhook answered 200 after it.
        stored_after_s: from the fault to the first media stored after it.
        longest_pause_s: the longest time without a media stored, in the 60 s after the fault.
    """

    fault: ClusterFault
    accepted_after_s: float | None
    stored_after_s: float | None
    longest_pause_s: float | None

    def __str__(self) -> str:
        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        return (
            f"{self.fault.name}: accepting after {secs(self.accepted_after_s)}, storing after "
            f"{secs(self.stored_after_s)}, longest pause in stores {secs(self.longest_pause_s)}, "
            f"in sync {self.fault.in_sync_s:.1f} s after restart; status showed "
            f"{self.fault.seen.removeprefix('replication: ')[:160]!r}"
        )


def resumption(fault: ClusterFault, summary: SendSummary, rows: Mapping[str, MediaRow]) -> Resumed:
    """Measure how the pipeline resumed after ``fault``, from the answers and the projection."""
    accepted = sorted(d.answered_at for d in summary.accepted if d.answered_at >= fault.at)
    window = fault.at + 60
    stores = sorted(
        r.status_at / 1000
        for r in rows.values()
        if r.status == "stored" and fault.at <= r.status_at / 1000 <= window
    )
    pause = None
    if stores:
        marks = [fault.at, *stores, min(window, max(stores[-1], fault.at))]
        pause = max(b - a for a, b in itertools.pairwise(marks))
    return Resumed(
        fault,
        accepted[0] - fault.at if accepted else None,
        stores[0] - fault.at if stores else None,
        pause,
    )


def report(result: Result) -> str:
    """The chaos table, the faults that fired, and the run's own troubles."""
    played = result.played
    lines = [render(result.tally, len(result.summary.accepted)), oracle.render(result.verdict)]
    lines += [
        "faults that fired",
        f"  {'429/503 with a hostile Retry-After':<42} {played.hostile_retry_after:>7}",
        f"  {'W-API error messages with a surrogate':<42} {played.surrogate_errors:>7}",
        f"  {'W-API redirects to another origin':<42} {played.redirects:>7}",
        f"    {'requests that reached that origin':<40} {played.trap_requests:>7}",
        f"    {'carrying a token or media key':<40} {played.trap_leaks:>7}",
        f"  {'downloader waits on a wrong S3 secret':<42} {played.credential_waits:>7}",
    ]
    if result.cluster_faults:
        lines.append("cluster faults (resumed = first webhook accepted / media stored after it)")
        lines += [f"  {r}" for r in result.cluster_faults]
    lines += [f"PLANNED FAULT NEVER FIRED: {name}" for name in result.unplayed]
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
    print("RESULT:", "nothing lost, nothing duplicated, all as meant" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
