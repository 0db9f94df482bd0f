"""Capacity: the webhook rate at which the whole pipeline stops keeping up (the knee).

Every role runs as a child process (:class:`simulator.pipeline.Pipeline`:
receiver, detector, downloader, projection, API) against the fake W-API and
CDN. The offered webhook rate climbs in steps of ``step_s`` seconds; after
each step the run waits for that step's media to be stored. A step keeps up
when every media of the step is stored, the p99 of webhook accepted -> stored
stays within ``KNEE_P99_S`` and the consumer lag (all stages, in records) does
not keep growing while the rate is held (it rises at every sample of the
step's second half, by more than :data:`LAG_GROWTH_S`). The knee is the
last step that kept up: its media stored/s is what the machine sustains, with
the CPU share of each role there (CPU seconds of each role's process tree
over the step; ``load generator`` is this process: the fake W-API and CDN,
the webhook sender, the sampler).

Configurations: the small mix (voice notes and photos of 20-200 KB, W-API
webhooks only) and the simulator's realistic mix (every provider and media
kind, realistic sizes, texts, statuses, redeliveries, malformed bodies),
each with one copy of every stage and then with two detector and two
downloader copies (distinct instance names).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.e2e import LagSampler
from mediaflow.config import Settings
from mediaflow.events import MediaType
from mediaflow.tenants import TenantRegistry
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import ROLES, Pipeline, Run, copies, wait_terminal
from simulator.report import TERMINAL, accepted_at, latencies_s, percentile
from simulator.sender import SendSummary, send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import Webhook, WebhookFactory

KNEE_P99_S = 2.0
"""A step whose accepted -> stored p99 exceeds this did not keep up."""

RATES = (4.0, 8.0, 12.0, 18.0, 27.0, 40.0, 60.0, 90.0, 135.0, 200.0)
"""Webhooks/s offered, one step each, until a step does not keep up."""

LAG_GROWTH_S = 4.0
"""Lag growth (in records, per webhook/s offered) over a step's second half that is a backlog.

A webhook makes about four records on the way (webhook, download request, two
media events), so this is about one second of offered webhooks left behind.
"""

STEP_S = 20.0
DRAIN_S = 30.0
"""After a step, how long its media may take to be stored before the step counts as lost."""

SMALL_SIZES = (20_000, 200_000)
MIXES = ("small", "realistic")
SCALE_OUT = {"detector": 2, "downloader": 2}


def run(
    settings: Settings,
    rates: Sequence[float] = RATES,
    step_s: float = STEP_S,
    mixes: Sequence[str] = MIXES,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Ramp each mix with one copy of each stage, then with two detectors and two downloaders.

    Args:
        settings: where the stack is (and the tenants file with the demo secrets).
        rates: webhooks/s offered, in turn.
        step_s: how long each rate is held.
        mixes: ``small`` and/or ``realistic``.
        environ: the environment the roles start from; ``os.environ`` if omitted.

    Returns:
        ``knees`` and ``ramps`` by configuration (``small_x1``, ``small_x2``:
        two detectors and two downloaders, ``realistic_x1``...): the knee step
        (``None`` when even the first step did not keep up) and every step measured.
    """
    ramps: dict[str, list[dict[str, Any]]] = {}
    for mix in mixes:
        for name, counts in ((f"{mix}_x1", {}), (f"{mix}_x2", SCALE_OUT)):
            ramps[name] = ramp(settings, mix, counts, rates, step_s, environ)
    knees = {name: knee(steps) for name, steps in ramps.items()}
    return {"knee_p99_s": KNEE_P99_S, "step_s": step_s, "knees": knees, "ramps": ramps}


def knee(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The last step that kept up before the first one that did not (``None``: none did)."""
    kept: dict[str, Any] | None = None
    for step in steps:
        if not step["kept_up"]:
            break
        kept = dict(step)
    return kept


def ramp(
    settings: Settings,
    mix: str,
    counts: Mapping[str, int],
    rates: Sequence[float],
    step_s: float,
    environ: Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """Start a fresh pipeline and offer each rate in turn until a step does not keep up."""
    registry = TenantRegistry.load(settings.tenants_file, environ)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    library = MediaLibrary(17)
    steps: list[dict[str, Any]] = []
    with SimulatorThread(library, Faults(seed=17), tokens) as sim:
        run_ = Run.create("capacity", wapi_url=sim.wapi_url, cdn_url=sim.cdn_url, environ=environ)
        factory = WebhookFactory(library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=17)
        run_.prepare()
        try:
            with Pipeline(run_, copies(ROLES, counts)) as pipeline:
                pipeline.wait_assigned()
                for rate in rates:
                    batch = webhooks(factory, library, mix, round(rate * step_s))
                    step = _step(run_, pipeline, batch, rate, secrets)
                    steps.append(step)
                    print(f"[capacity] {mix} {dict(counts) or '1 copy'}: {_line(step)}", flush=True)
                    if not step["kept_up"]:
                        break
        finally:
            run_.discard()
    return steps


def webhooks(factory: WebhookFactory, library: MediaLibrary, mix: str, count: int) -> list[Webhook]:
    """``count`` webhooks of ``mix``: ``small`` (W-API voice notes and photos) or ``realistic``."""
    if mix == "realistic":
        return factory.mixed(count)
    if mix != "small":
        raise ValueError(f"unknown mix {mix!r}: small or realistic")
    rng = random.Random(count)
    kinds = ((MediaType.AUDIO, "ptt"), (MediaType.IMAGE, None))
    return [
        factory.wapi_media(library.make(kind, variant, size=rng.randint(*SMALL_SIZES)))
        for kind, variant in (rng.choice(kinds) for _ in range(count))
    ]


def _step(
    run_: Run, pipeline: Pipeline, batch: list[Webhook], rate: float, secrets: Mapping[str, str]
) -> dict[str, Any]:
    media_ids: set[str] = set()
    sampler = LagSampler(run_, media_ids)
    before = pipeline.cpu_seconds()
    own_before = time.process_time()
    sampler.start()
    started = time.time()
    summary: SendSummary = asyncio.run(
        send_webhooks(batch, base_url=run_.webhook_url, secrets=secrets, rate=rate)
    )
    sent = time.time()
    media_ids.update(summary.media_ids() | summary.invalid_media_ids())
    lag = [sum(s["lag"].values()) for s in sampler.samples]
    # The pipeline fills during the first half of a step; in the second half a
    # pipeline that keeps up holds its lag, one that does not adds to it at every sample.
    held = [sum(s["lag"].values()) for s in sampler.samples if s["t"] >= (sent - started) / 2]
    rows, done = wait_terminal(run_, media_ids, TERMINAL, DRAIN_S, poll_s=0.5)
    drained = time.time()
    sampler.stop()
    cpu = {r: v - before.get(r, 0.0) for r, v in pipeline.cpu_seconds().items()}
    cpu["load generator"] = time.process_time() - own_before
    present = [r for r in rows.values() if r is not None]
    stored = [r for r in present if r.status == "stored"]
    latency = list(latencies_s(present, accepted_at(summary.deliveries)).values())
    unfinished = len(media_ids) - done
    p99 = percentile(latency, 0.99) if not unfinished else float("inf")
    growing = (
        len(held) >= 3
        and all(b > a for a, b in itertools.pairwise(held))
        and held[-1] - held[0] > rate * LAG_GROWTH_S
    )
    last_stored = max((r.stored_at / 1000 for r in stored if r.stored_at), default=sent)
    busy = max(sent, last_stored) - started
    total_cpu = sum(cpu.values()) or 1.0
    return {
        "rate_offered": rate,
        "webhooks": len(batch),
        "accepted": len(summary.accepted),
        "accepted_per_s": round(len(summary.accepted) / max(sent - started, 1e-9), 2),
        "media": len(media_ids),
        "stored": len(stored),
        "unfinished": unfinished,
        "stored_per_s": round(len(stored) / max(busy, 1e-9), 2),
        "latency_ms": {
            "p50": round(1000 * percentile(latency, 0.5)),
            "p99": round(1000 * p99) if p99 != float("inf") else None,
        },
        "lag_samples": lag,
        "lag_growing": growing,
        "kept_up": not unfinished and p99 <= KNEE_P99_S and not growing,
        "cpu_s": {r: round(v, 2) for r, v in sorted(cpu.items())},
        "cpu_share": {r: round(v / total_cpu, 3) for r, v in sorted(cpu.items())},
        "cores_busy": round(total_cpu / max(drained - started, 1e-9), 2),
    }


def _line(step: Mapping[str, Any]) -> str:
    return (
        f"{step['rate_offered']:g}/s offered, {step['stored_per_s']:g} stored/s, "
        f"p99 {step['latency_ms']['p99']} ms, lag {step['lag_samples'][-3:]}, "
        f"{'kept up' if step['kept_up'] else 'did NOT keep up'}"
    )


def plot(result: Mapping[str, Any], directory: Path) -> list[Path]:
    """p99 latency and last lag sample against the offered rate, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency_axes, lag_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for name, steps in result["ramps"].items():
        rates = [s["rate_offered"] for s in steps]
        p99 = [
            (s["latency_ms"]["p99"] if s["latency_ms"]["p99"] is not None else float("nan"))
            for s in steps
        ]
        lag = [s["lag_samples"][-1] if s["lag_samples"] else 0 for s in steps]
        latency_axes.plot(rates, p99, marker="o", label=name)
        lag_axes.plot(rates, lag, marker="o", label=name)
    latency_axes.axhline(1000 * KNEE_P99_S, color="grey", linestyle="--", label="knee: p99 2 s")
    latency_axes.set(
        title="accepted -> stored p99", xlabel="webhooks/s offered", ylabel="ms", yscale="log"
    )
    lag_axes.set(
        title="consumer lag at the end of each step",
        xlabel="webhooks/s offered",
        ylabel="records",
    )
    for axes in (latency_axes, lag_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    path = directory / "capacity.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return [path]


__all__ = ["KNEE_P99_S", "RATES", "knee", "plot", "ramp", "run", "webhooks"]
