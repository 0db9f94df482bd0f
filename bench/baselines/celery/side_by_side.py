"""mediaflow and the Celery + Redis baseline on the same webhooks under the same faults.

``python -m bench.baselines.celery [--webhooks 5000] [--rate 40] [--seed 11] [--no-faults]``

Both systems run one after the other on a private stack (Kafka and S3Proxy
on ports of their own, so stopping them disturbs nobody), against the
simulator's fake W-API and CDN with the chaos run's fault injection (30 %
5xx/429 and 5 % hangs on W-API, the CDN and file links), fed the same seeded
realistic mix at the same rate, while the same schedule plays out: the
worker SIGKILLed and restarted twice (mediaflow's downloader / the Celery
worker with its pool), the queue's broker stopped 15 s (Kafka / Redis) and S3
stopped 20 s. mediaflow runs through the chaos harness itself
(:func:`tests.chaos.run.run_chaos`); the baseline through the same pieces
here. Each bucket is then judged by the chaos oracle (:mod:`.report`), and
the table goes to ``bench/results/celery.json`` and ``celery.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.baselines.celery import report
from bench.baselines.celery.cpu import CpuMeter, Matcher, pid_from
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.storage.s3 import ensure_bucket, s3_client
from mediaflow.tenants import TenantRegistry
from simulator import ledger
from simulator.demo import local_environment
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import RUNS_DIR, free_port
from simulator.scratch import drop_bucket
from simulator.sender import SendSummary, send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import Webhook, WebhookFactory
from tests.chaos import oracle
from tests.chaos.run import HOSTILE_RETRY_AFTER, STATUS_MIX, Plan, Step, run_chaos

HERE = Path(__file__).resolve().parent
RESULTS = REPO_ROOT / "bench" / "results"
STACK = REPO_ROOT / "deploy" / "stack.sh"
STACK_DIR = REPO_ROOT / ".stack" / "side-by-side"
KAFKA_PORT, S3_PORT = 19092, 19000
CONCURRENCY = 8
"""Celery pool processes: as many as the downloads mediaflow's downloader runs at once."""
BROKER_DOWN_S, S3_DOWN_S = 15, 20

OPERATOR = {
    "mediaflow": (
        "every media that failed for good is a dead letter with its kind and reason: "
        "`mediaflow dlq list` shows them, `mediaflow dlq redrive` sends them back"
    ),
    "celery": (
        "nothing to list: with no result backend a task that exhausted its retries is acked "
        "and gone, its failure only a line in the worker log; retrying means finding the "
        "webhook again and re-posting it"
    ),
}


def schedule(span_s: float, faults: bool) -> tuple[Step, ...]:
    """The fault schedule over a sending span: two worker kills, broker and S3 outages."""
    if not faults:
        return ()
    return (
        Step(0.20 * span_s, "kill", "downloader"),
        Step(0.20 * span_s + 3, "restart", "downloader"),
        Step(0.40 * span_s, "down", "kafka"),
        Step(0.40 * span_s + BROKER_DOWN_S, "up", "kafka"),
        Step(0.60 * span_s, "down", "s3"),
        Step(0.60 * span_s + S3_DOWN_S, "up", "s3"),
        Step(0.85 * span_s, "kill", "downloader"),
        Step(0.85 * span_s + 3, "restart", "downloader"),
    )


def plan_for(webhooks: int, rate: float, seed: int, faults: bool, timeout_s: float) -> Plan:
    """The chaos plan both systems get: only the faults named in the module docstring."""
    return Plan(
        webhooks,
        rate,
        schedule(webhooks / rate, faults),
        error_rate=0.30 if faults else 0.0,
        hang_rate=0.05 if faults else 0.0,
        provider_error_rate=0.0,
        redirect_rate=0.0,
        seed=seed,
        timeout_s=timeout_s,
    )


def simulator_faults(plan: Plan) -> Faults:
    """The fake endpoints' faults, built as the chaos run builds them for ``plan``."""
    return Faults(
        error_rate=plan.error_rate,
        status_mix=dict(STATUS_MIX),
        retry_after_values=HOSTILE_RETRY_AFTER,
        hang_rate=plan.hang_rate,
        hang_s=60.0,
        seed=plan.seed,
        targets=frozenset({"wapi", "cdn", "files"}),
    )


# --------------------------------------------------------------------- the stack


def stack_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` pointed at the private stack."""
    env = local_environment(environ)
    env.update(
        MEDIAFLOW_STACK_DIR=str(STACK_DIR),
        MEDIAFLOW_KAFKA_PORT=str(KAFKA_PORT),
        MEDIAFLOW_S3_PORT=str(S3_PORT),
        MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{KAFKA_PORT}",
        MEDIAFLOW_S3_ENDPOINT_URL=f"http://127.0.0.1:{S3_PORT}",
        PYTHON=sys.executable,
    )
    return env


def private_stack(action: str, env: Mapping[str, str]) -> None:
    """``deploy/stack.sh <action>`` on the private stack (its jars shared with the usual one)."""
    shared = REPO_ROOT / ".stack" / "jars"
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    if shared.is_dir() and not (STACK_DIR / "jars").exists():
        (STACK_DIR / "jars").symlink_to(shared)
    subprocess.run([str(STACK), action], check=True, env=dict(env), cwd=REPO_ROOT)


def kafka_matcher() -> Matcher:
    """The private stack's Kafka broker, whichever pid it has after a restart."""
    pid_file = STACK_DIR / "run" / "kafka.pid"
    return lambda pid, _argv: pid == pid_from(pid_file)


def argv_has(*words: str) -> Matcher:
    """Processes whose command line holds every one of ``words`` as an argument."""
    return lambda _pid, argv: all(w in argv for w in words)


# --------------------------------------------------------------------- mediaflow


def run_mediaflow(plan: Plan, env: Mapping[str, str]) -> dict[str, Any]:
    """mediaflow through the chaos harness; its bucket judged by :mod:`.report`."""
    groups = {"roles": argv_has("-m", "mediaflow", "run"), "kafka": kafka_matcher()}
    with CpuMeter(groups) as meter:
        result = run_chaos(plan, environ=env)
    run = result.run
    try:
        column = judge(run.settings, run.directory / "ledger.jsonl", result.summary, meter, "kafka")
    finally:
        run.discard()
    letters = dict(result.verdict.dlq_by_kind)
    column["dead_letters"] = letters
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(letters.items())) or "none"
    column["visible_failures"] = f"dead letters: {shown}"
    column["oracle_problems"] = {k: len(v) for k, v in result.verdict.problems.items() if v}
    column["operator"] = OPERATOR["mediaflow"]
    return column


# ------------------------------------------------------------------------ Celery


@dataclasses.dataclass
class Baseline:
    """The Celery baseline's processes: Redis, the webhook view, the worker (with its pool)."""

    env: dict[str, str]
    directory: Path
    redis_port: int
    web_port: int
    worker: subprocess.Popen[bytes] | None = None
    web: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The webhook view's base URL."""
        return f"http://127.0.0.1:{self.web_port}"

    def redis(self, action: str) -> None:
        """Start (``up``) or stop (``down``) Redis."""
        script = HERE / "redis.sh"
        folder = self.directory / "redis"
        subprocess.run([str(script), action, str(folder), str(self.redis_port)], check=True)

    def start_worker(self) -> None:
        """Start the Celery worker: prefork, :data:`CONCURRENCY` processes."""
        argv = [
            *(sys.executable, "-m", "celery", "-A", "bench.baselines.celery.app", "worker"),
            *("--pool", "prefork", "--concurrency", str(CONCURRENCY), "--loglevel", "INFO"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        self.worker = self._spawn(argv, "worker")

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool processes, as an OOM kill or a lost machine would."""
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(timeout=30)

    def start_web(self) -> None:
        """Start the webhook view; return once it answers."""
        self.web = self._spawn(
            [sys.executable, "-m", "bench.baselines.celery.web", str(self.web_port)], "web"
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2):
                    return
            except OSError as exc:
                if time.monotonic() > deadline or self.web.poll() is not None:
                    message = f"the webhook view did not start; see {self.directory}"
                    raise RuntimeError(message) from exc
                time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM the view and the worker (warm shutdown), SIGKILL what is left; stop Redis."""
        for child in (self.web, self.worker):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (self.web, self.worker):
            if child is None:
                continue
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
        self.redis("down")

    def backlog(self) -> int:
        """Tasks still in Redis: queued, or reserved and not yet acknowledged."""
        client = redis.Redis(port=self.redis_port, socket_timeout=5)
        try:
            return int(client.llen("celery")) + int(client.hlen("unacked"))
        except redis.RedisError:
            return -1
        finally:
            client.close()

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("ab")
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_celery(plan: Plan, env: Mapping[str, str]) -> dict[str, Any]:
    """The baseline on ``plan``: same simulator faults, webhooks and schedule as mediaflow's."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    directory = RUNS_DIR / f"celery-{stamp}-{os.getpid() % 10000:04d}"
    directory.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env({**env, "MEDIAFLOW_S3_BUCKET": directory.name})
    registry = TenantRegistry.load(settings.tenants_file, env)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    clients = {i: t.client_id for i, t in registry.tenants.items()}
    library = MediaLibrary(plan.seed, max_size=plan.max_media_bytes)
    client = s3_client(settings.s3)
    ensure_bucket(client, settings.s3)
    groups = {
        "worker": argv_has("bench.baselines.celery.app", "worker"),
        "web": argv_has("bench.baselines.celery.web"),
        "redis": lambda pid, _argv: pid == pid_from(directory / "redis" / "redis.pid"),
    }
    try:
        with SimulatorThread(library, simulator_faults(plan), tokens) as sim:
            child_env = {
                **env,
                "MEDIAFLOW_S3_BUCKET": settings.s3.bucket,
                "MEDIAFLOW_WAPI_BASE_URL": sim.wapi_url,
                "MEDIAFLOW_CDN_BASE_URL": sim.cdn_url,
                "BENCH_CELERY_BROKER_URL": "",
                "BENCH_CELERY_HTTP_TIMEOUT_S": str(plan.read_timeout_s),
            }
            baseline = Baseline(child_env, directory, free_port(), free_port())
            baseline.env["BENCH_CELERY_BROKER_URL"] = f"redis://127.0.0.1:{baseline.redis_port}/0"
            factory = WebhookFactory(
                sim.library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=plan.seed
            )
            batch = factory.mixed(plan.webhooks)
            print(f"celery run {directory.name}: {len(batch)} webhooks at {plan.rate:.0f}/s")
            with CpuMeter(groups) as meter:
                baseline.redis("up")
                try:
                    baseline.start_worker()
                    baseline.start_web()
                    summary = send_under_faults(baseline, plan, batch, secrets, env)
                    print(summary.table())
                    wait_drained(baseline, settings, summary, plan.timeout_s)
                finally:
                    baseline.stop()
        path = directory / "ledger.jsonl"
        ledger.write(path, ledger.build(batch, clients, accepted_by_message(summary)))
        column = judge(settings, path, summary, meter, "redis")
    finally:
        drop_bucket(client, settings.s3.bucket)
    failed = log_lines(directory / "worker.log", FAILED_MARKS)
    refused = log_lines(directory / "web.log", (REFUSED_MARK,))
    column["failed_tasks_in_log"] = failed
    column["refused_media_in_log"] = refused
    column["visible_failures"] = (
        f"log lines only: {failed} tasks failed or rejected (worker), "
        f"{refused} media not enqueued (view)"
    )
    column["operator"] = OPERATOR["celery"]
    return column


def send_under_faults(
    baseline: Baseline,
    plan: Plan,
    batch: Sequence[Webhook],
    secrets: Mapping[str, str],
    env: Mapping[str, str],
) -> SendSummary:
    """Send ``batch`` to the view at the plan's rate while the schedule plays out."""
    holder: list[SendSummary] = []

    def send() -> None:
        holder.append(
            asyncio.run(
                send_webhooks(batch, base_url=baseline.url, secrets=secrets, rate=plan.rate)
            )
        )

    sender = threading.Thread(target=send, name="celery-sender", daemon=True)
    started = time.monotonic()
    sender.start()
    actions: dict[tuple[str, str], Callable[[], None]] = {
        ("kill", "downloader"): baseline.kill_worker,
        ("restart", "downloader"): baseline.start_worker,
        ("down", "kafka"): lambda: baseline.redis("down"),
        ("up", "kafka"): lambda: baseline.redis("up"),
        ("down", "s3"): lambda: stack_service("down", "s3", env),
        ("up", "s3"): lambda: stack_service("up", "s3", env),
    }
    down: set[str] = set()
    try:
        for step in sorted(plan.steps, key=lambda s: s.at_s):
            time.sleep(max(0.0, started + step.at_s - time.monotonic()))
            print(f"  t={time.monotonic() - started:6.1f}s  {step.action} {step.target}")
            actions[(step.action, step.target)]()
            (down.add if step.action == "down" else down.discard)(step.target)
    finally:
        for target in down:
            actions[("up", target)]()
    sender.join()
    return holder[0]


def stack_service(action: str, service: str, env: Mapping[str, str]) -> None:
    """Stop or start one service of the private stack."""
    subprocess.run([str(STACK), action, service], check=True, env=dict(env), cwd=REPO_ROOT)


def wait_drained(
    baseline: Baseline, settings: Settings, summary: SendSummary, timeout_s: float
) -> None:
    """Wait until the bucket holds every media the accepted webhooks carry, or Celery is done.

    Celery keeps no per-media state to ask: done is "no task left in Redis
    and no new object for 30 s" (a task the dead worker reserved comes back
    only after the visibility timeout, so that wait is at least that long).
    """
    wanted = len(summary.media_ids())
    client = s3_client(settings.s3)
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    quiet_s = max(30.0, float(baseline.env.get("BENCH_CELERY_VISIBILITY_TIMEOUT_S", "60")) + 15)
    while time.monotonic() < deadline:
        count = sum(
            page.get("KeyCount", 0)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3.bucket)
        )
        backlog = baseline.backlog()
        print(f"\r  stored {count}/{wanted}, tasks in Redis {backlog}   ", end="", flush=True)
        if count >= wanted:
            break
        if count != last or backlog != 0:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since > quiet_s:
            break
        time.sleep(2.0)
    print()


def accepted_by_message(summary: SendSummary) -> dict[str | None, bool]:
    """Message id -> whether any delivery of it was answered 200."""
    accepted: dict[str | None, bool] = {}
    for delivery in summary.deliveries:
        key = delivery.webhook.message_id
        accepted[key] = accepted.get(key, False) or delivery.status == 200
    return accepted


FAILED_MARKS = ("raised unexpected", "reject requeue=False")
"""How the worker log says a task failed for good or was rejected without requeueing (its
retry could not be published while Redis was down; it comes back after the visibility
timeout only if the reject did not reach Redis either)."""
REFUSED_MARK = "media cannot be downloaded"
"""How the view's log says a media was never enqueued (a broken media key)."""


def log_lines(log: Path, marks: Sequence[str]) -> int:
    """Lines of ``log`` holding any of ``marks`` (0 when there is no log)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if any(m in line for m in marks))


# ------------------------------------------------------------------------- judging


def judge(
    settings: Settings, ledger_path: Path, summary: SendSummary, meter: CpuMeter, broker: str
) -> dict[str, Any]:
    """Read the bucket (bytes and LastModified) and judge it against the ledger."""
    s3 = settings.s3
    access = oracle.S3Access(
        s3.endpoint_url, s3.region, s3.bucket, s3.access_key.reveal(), s3.secret_key.reveal()
    )
    objects, open_uploads = oracle.read_bucket(access)
    stored_at = {key: written_at(s3.bucket, key) for key in objects}
    accepted_at: dict[str, float] = {}
    for delivery in summary.accepted:
        message = delivery.webhook.message_id
        if message is not None:
            accepted_at[message] = min(
                accepted_at.get(message, delivery.answered_at), delivery.answered_at
            )
    fate = report.fates(
        oracle.read_ledger(ledger_path), objects, open_uploads, stored_at, accepted_at
    )
    return report.summary(
        fate,
        accepted=len(summary.accepted),
        sent=len(summary.deliveries),
        cpu_s=meter.totals(),
        broker=broker,
    )


def written_at(bucket: str, key: str) -> float:
    """When S3Proxy finished writing an object: its file's mtime (LastModified has whole seconds).

    The same clock as the webhooks' ``answered_at``: both systems run on this machine.
    """
    return (STACK_DIR / "s3-data" / bucket / key).stat().st_mtime


# ---------------------------------------------------------------------------- main


def run(
    _settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    webhooks: int = 5000,
    rate: float = 40.0,
    seed: int = 11,
    faults: bool = True,
    timeout_s: float = 420.0,
) -> dict[str, Any]:
    """``python -m bench --only celery``: :func:`compare`, written to ``bench/results/``.

    The shared stack's settings go unused: the faults stop brokers, so the
    comparison runs on a stack of its own.
    """
    result = compare(webhooks, rate, seed, faults, timeout_s, environ)
    write(result)
    return result


def compare(
    webhooks: int = 5000,
    rate: float = 40.0,
    seed: int = 11,
    faults: bool = True,
    timeout_s: float = 420.0,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Both systems, one after the other, on the private stack; the side-by-side result."""
    env = stack_env(os.environ if environ is None else environ)
    # The chaos harness stops and starts services with deploy/stack.sh on os.environ's stack.
    os.environ.update(
        {k: env[k] for k in ("MEDIAFLOW_STACK_DIR", "MEDIAFLOW_KAFKA_PORT", "MEDIAFLOW_S3_PORT")}
    )
    plan = plan_for(webhooks, rate, seed, faults, timeout_s)
    began = time.perf_counter()
    private_stack("up", env)
    try:
        columns = {"mediaflow": run_mediaflow(plan, env), "celery": run_celery(plan, env)}
    finally:
        private_stack("down", env)
    return {
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - began, 1),
        "plan": {
            "webhooks": webhooks,
            "rate": rate,
            "seed": seed,
            "error_rate": plan.error_rate,
            "hang_rate": plan.hang_rate,
            "steps": [dataclasses.asdict(s) for s in plan.steps],
            "celery_concurrency": CONCURRENCY,
        },
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "systems": columns,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both, write ``bench/results/celery.json`` and ``celery.md``, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.celery", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=40.0, help="webhooks per second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=420.0, help="longest drain wait, s")
    parser.add_argument("--no-faults", action="store_true", help="smoke test: no fault at all")
    args = parser.parse_args(argv)
    result = compare(args.webhooks, args.rate, args.seed, not args.no_faults, args.timeout)
    write(result)
    print(result["markdown"])
    return 0


def write(result: dict[str, Any]) -> None:
    """Add the table to ``result`` (``markdown``); write ``celery.json`` and ``celery.md``."""
    result["markdown"] = render(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "celery.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (RESULTS / "celery.md").write_text(result["markdown"] + "\n")


def render(result: Mapping[str, Any]) -> str:
    """The markdown the results file and the README show."""
    plan = result["plan"]
    faults = (
        "no faults"
        if not plan["steps"]
        else (
            f"W-API/CDN {plan['error_rate']:.0%} 5xx/429 and {plan['hang_rate']:.0%} hangs, "
            f"worker SIGKILLed twice, broker down {BROKER_DOWN_S} s, S3 down {S3_DOWN_S} s"
        )
    )
    columns = {
        "mediaflow": result["systems"]["mediaflow"],
        "Celery + Redis": result["systems"]["celery"],
    }
    return "\n".join(
        [
            f"### Side by side: mediaflow and a Celery + Redis worker "
            f"({plan['webhooks']} webhooks at {plan['rate']:.0f}/s, {faults})",
            "",
            report.markdown(columns),
            "",
            f"Celery: prefork, {plan['celery_concurrency']} processes; load average at the end "
            f"{result['load_average']}; `python -m bench.baselines.celery`.",
        ]
    )
