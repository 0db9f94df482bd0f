"""``make bench`` (``python -m bench [--quick] [--only NAME ...] [--no-e2e] [--publish]``).

Runs every benchmark module present (``bench/bench_<stage>.py``, each
measuring its stage side by side with a baseline in the same run) on fresh
topics and a fresh bucket, then the end-to-end run (:mod:`bench.e2e`), the
capacity ramp (:mod:`bench.capacity`) and mediaflow side by side with a Celery +
Redis worker (:mod:`bench.baselines.celery`), and
writes ``bench/results/latest.json``, ``latest.md`` (the table of ratios
against their targets, the machine) and the e2e PNG plots. A module that is
absent is reported as ``missing``, one that raises as ``error``: neither stops
the others. ``--quick`` shrinks every size (smoke test of the runner).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._fresh import fresh_stack
from bench.publish import publish
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.logging import configure

RESULTS = REPO_ROOT / "bench" / "results"
# The detector runs first: its transactional load warms the broker's JVM, which
# the webhook receiver's numbers otherwise pay for after a fresh `make stack-up`.
MODULES = (
    "bench_detector",
    "bench_webhook",
    "bench_downloader",
    "bench_memory",
    "bench_projection",
    "bench_notifier",
)
SYSTEM_RUNS = ("e2e", "capacity", "celery")
"""Runs of the whole pipeline, after the modules: the end-to-end run, the capacity ramp, and
mediaflow side by side with a Celery + Redis worker under the same faults."""
SYSTEM_MODULES = {"celery": "bench.baselines.celery.side_by_side"}
"""System runs whose module is not ``bench.<name>``."""

# Arguments per module and mode, passed only when the module's run() accepts them.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        # 12 turns of 2 s each: with 4 of 2.5 s, the ratio moved 0.42-0.63 from run
        # to run on a 2-core machine, with the same code.
        "bench_webhook": {"duration_s": 24.0, "connections": 32, "rounds": 12},
        "bench_detector": {"n": 20000},
        "bench_downloader": {},
        "bench_memory": {"files": 4, "size_mb": 200, "concurrency": 4},
        "bench_projection": {"n": 200_000},
        "bench_notifier": {"n": 5000},
        "e2e": {"rate": 10.0, "duration_s": 60.0},
        "capacity": {},
        "celery": {},
    },
    "quick": {
        "bench_webhook": {"duration_s": 2.0, "connections": 32},
        "bench_detector": {"n": 1000},
        "bench_downloader": {
            "quick": True,
            "n": 4,
            "size_mb": 8,
            "total_mb": 64,
            "large_n": 2,
            "large_mb": 24,
        },
        "bench_memory": {"files": 2, "size_mb": 32, "concurrency": 2},
        "bench_projection": {"n": 2000},
        "bench_notifier": {"n": 300},
        "e2e": {"rate": 5.0, "duration_s": 10.0},
        "capacity": {"rates": (4.0, 8.0), "step_s": 6.0, "mixes": ("small",)},
        "celery": {"webhooks": 50, "rate": 10.0, "faults": False},
    },
}


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One line of the results table: a number found in a module's result, and its goal."""

    label: str
    module: str
    keys: tuple[str, ...]
    goal: str
    passes: Callable[[float], bool]


TARGETS = (
    Target("webhook receiver / no-op", "bench_webhook", ("ratio",), ">= 0.5x", lambda v: v >= 0.5),
    Target(
        "webhook receiver / no-op, wrk as the load",
        "bench_webhook",
        ("wrk.ratio",),
        ">= 0.5x",
        lambda v: v >= 0.5,
    ),
    Target(
        "webhook floor: read + JSON parse + Avro encode + produce, nothing else / no-op",
        "bench_webhook",
        ("floor_ratio",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "webhook floor / no-op, wrk as the load",
        "bench_webhook",
        ("wrk.floor_ratio",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "webhook no-op / receiver main-thread CPU per webhook, wrk as the load",
        "bench_webhook",
        ("wrk.main_thread_ratio",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "webhook p99 at 32 connections (ms)",
        "bench_webhook",
        ("receiver.p99_ms",),
        "< 50 ms",
        lambda v: v < 50,
    ),
    Target(
        "detector transactional / non-transactional",
        "bench_detector",
        ("transactional_vs_non_transactional",),
        ">= 0.5x",
        lambda v: v >= 0.5,
    ),
    Target(
        "downloader / boto3 upload_fileobj",
        "bench_downloader",
        ("ratio", "vs_boto3", "downloader_vs_boto3", "ratio_vs_boto3"),
        ">= 0.8x",
        lambda v: v >= 0.8,
    ),
    Target(
        "downloader peak RSS storing 1 GiB (MB)",
        "bench_downloader",
        ("peak_rss_mb", "rss_mb", "peak_rss.mb", "memory.peak_rss_mb"),
        "< 200 MB",
        lambda v: v < 200,
    ),
    Target(
        "downloader peak RSS, burst of 4 x 200 MB at concurrency 4 (MB)",
        "bench_memory",
        ("peak_rss_mb",),
        "< 300 MB",
        lambda v: v < 300,
    ),
    Target(
        "projection rebuild / consume-only",
        "bench_projection",
        ("rebuild_vs_consume_only",),
        ">= 0.5x",
        lambda v: v >= 0.5,
    ),
    Target(
        "projection rebuild / consume + decode in as many processes (its ceiling)",
        "bench_projection",
        ("rebuild_vs_consume_decode_all_workers",),
        ">= 0.8x",
        lambda v: v >= 0.8,
    ),
    Target(
        "projection rebuild, one process / consume + decode in one process",
        "bench_projection",
        ("rebuild_one_worker_vs_consume_decode",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "projection rebuild / consume + decode, CPU time per event, one process",
        "bench_projection",
        ("rebuild_one_worker_cpu_vs_consume_decode",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "projection ceiling: consume + decode, as many processes / consume-only",
        "bench_projection",
        ("decode_ceiling_all_workers_vs_consume_only",),
        "reported",
        lambda _v: True,
    ),
    Target(
        "notifier signed callbacks / plain aiohttp client, same bodies",
        "bench_notifier",
        ("notifier_vs_plain",),
        "reported",
        lambda _v: True,
    ),
    Target("e2e latency p99 (ms)", "e2e", ("latency_ms.p99",), "reported", lambda _v: True),
    Target(
        "e2e latency webhook accepted -> signed callback received, p99 (ms)",
        "e2e",
        ("callback_latency_ms.p99",),
        "reported",
        lambda _v: True,
    ),
    *(
        Target(
            f"capacity knee, {label} (media stored/s)",
            "capacity",
            (f"knees.{name}.stored_per_s",),
            "reported",
            lambda _v: True,
        )
        for name, label in (
            ("small_x1", "small media, 1 copy of each stage"),
            ("small_x2", "small media, 2 detectors + 2 downloaders"),
            ("realistic_x1", "realistic mix, 1 copy of each stage"),
            ("realistic_x2", "realistic mix, 2 detectors + 2 downloaders"),
        )
    ),
    Target(
        "side by side with Celery + Redis, mediaflow: media lost",
        "celery",
        ("systems.mediaflow.lost",),
        "0",
        lambda v: v == 0,
    ),
    *(
        Target(
            f"side by side with Celery + Redis, {label}: {measure}",
            "celery",
            (f"systems.{system}.{key}",),
            "reported",
            lambda _v: True,
        )
        for system, label in (("mediaflow", "mediaflow"), ("celery", "Celery + Redis"))
        for measure, key in (
            ("media lost", "lost"),
            ("accepted -> stored p99 (s)", "p99_s"),
            ("CPU s per 1,000 media stored", "cpu_s_per_1000_media"),
        )
        if (system, key) != ("mediaflow", "lost")
    ),
    Target("e2e media stored/s", "e2e", ("stored_per_s",), "reported", lambda _v: True),
    Target("e2e lag drained (1 = bounded)", "e2e", ("lag.bounded",), "1", lambda v: v == 1),
)


def lookup(result: Mapping[str, Any], dotted: str) -> float | None:
    """The number at ``a.b.c`` in a nested result, or ``None``."""
    value: Any = result
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def table(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One row per target: value, goal and verdict (``pass``, ``FAIL``, ``missing``, ``error``)."""
    rows = []
    for target in TARGETS:
        result = results.get(target.module, {"status": "missing"})
        status = result.get("status", "ok")
        value = next((v for key in target.keys if (v := lookup(result, key)) is not None), None)
        if status != "ok":
            verdict, shown = status, "-"
        elif value is None:
            verdict, shown = "no value", "-"
        else:
            verdict = "pass" if target.passes(value) else "FAIL"
            shown = f"{value:.3g}"
        rows.append(
            {"measure": target.label, "value": shown, "target": target.goal, "verdict": verdict}
        )
    return rows


def markdown(rows: list[dict[str, str]], machine: Mapping[str, Any], mode: str) -> str:
    """The results table and the machine, as markdown."""
    lines = [
        f"# mediaflow benchmarks ({mode}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        "| measure | value | target | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['measure']} | {r['value']} | {r['target']} | {r['verdict']} |" for r in rows]
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    lines += ["Plots: e2e_throughput.png, e2e_latency.png, e2e_lag.png, capacity.png", ""]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and Kafka versions of this machine; its load average."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    # The stack's scripts keep their jars under MEDIAFLOW_STACK_DIR when it is set.
    stack_dir = Path(os.environ.get("MEDIAFLOW_STACK_DIR") or REPO_ROOT / ".stack")
    jars = stack_dir / "jars" / "kafka"
    kafka = next(
        (p.stem.removeprefix("kafka-clients-") for p in sorted(jars.glob("kafka-clients-*.jar"))),
        "unknown",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kafka": kafka,
        "os": platform.platform(),
        # Other work on the machine moves every figure: say how busy it was.
        "load_average_1m_at_the_end": round(os.getloadavg()[0], 1),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def run_module(name: str, settings: Settings, sizes: Mapping[str, Any]) -> dict[str, Any]:
    """Run one benchmark module on fresh topics and bucket; never raises."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return {"status": "missing"}
        return {"status": "error", "error": f"import failed: {exc}"}
    accepted = inspect.signature(module.run).parameters
    kwargs = {k: v for k, v in sizes.items() if k in accepted}
    started = time.perf_counter()
    try:
        with fresh_stack(settings) as fresh:
            result = dict(module.run(fresh, **kwargs))
        result.setdefault("status", "ok")
    except Exception as exc:  # one broken benchmark must not hide the others' numbers
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["arguments"] = kwargs
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the results, print the table.

    Exits 1 when a benchmark could not run; a missed target is a result, shown
    as FAIL in the table, and fails the exit status only with ``--strict``.
    """
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 10 s e2e")
    parser.add_argument("--only", nargs="*", help="module names (bench_webhook, e2e, ...)")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="then write the README's Performance section and docs/img/ from the results",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    from simulator.demo import local_environment

    env = local_environment(os.environ)
    settings = Settings.from_env(env)
    configure(fmt="json", level="warning")
    wanted = [m for m in (*MODULES, *SYSTEM_RUNS) if not args.only or m in args.only]
    if args.no_e2e and "e2e" in wanted:
        wanted.remove("e2e")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    for name in wanted:
        print(f"[bench] {name} ...", flush=True)
        if name in SYSTEM_RUNS:
            results[name] = _run_system(name, settings, SIZES[mode][name], env)
        else:
            results[name] = run_module(name, settings, SIZES[mode][name])
        print(f"[bench] {name}: {results[name].get('status')} in {results[name].get('seconds')} s")
    for name in (*MODULES, *SYSTEM_RUNS):
        results.setdefault(name, {"status": "skipped"})
    rows = table(results)
    description = machine()
    report = {
        "mode": mode,
        "finished_at": datetime.now(UTC).isoformat(),
        "total_s": round(time.perf_counter() - began, 1),
        "machine": description,
        "table": rows,
        "results": results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(rows, description, mode)
    (RESULTS / "latest.md").write_text(text)
    print()
    print(text)
    print(f"written: {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'} ({report['total_s']} s)")
    if args.publish:
        print(f"written: {publish(report)}")
    failing = ("FAIL", "error") if args.strict else ("error",)
    return 1 if any(r["verdict"] in failing for r in rows) else 0


def _run_system(
    name: str, settings: Settings, sizes: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, Any]:
    """Run a system run (whole pipelines of their own) and plot it if it plots; never raises."""
    module = importlib.import_module(SYSTEM_MODULES.get(name, f"bench.{name}"))
    started = time.perf_counter()
    try:
        result = module.run(settings, environ=env, **sizes)
        result["status"] = "ok"
        if hasattr(module, "plot"):
            result["plots"] = [str(p) for p in module.plot(result, RESULTS)]
    except Exception as exc:  # report it beside the other numbers
        traceback.print_exc()
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    sys.exit(main())
