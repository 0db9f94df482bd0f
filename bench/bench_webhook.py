"""Webhook receiver throughput against a no-op aiohttp handler, same load, same run.

Run: ``python -m bench.bench_webhook [--duration 10] [--connections 32]
[--rounds 4]`` (needs the local stack). Each server runs in its own process,
and so does the load generator, so client and server do not share an event
loop; the load goes to each server in turn, in rounds. Prints JSON:
webhooks/s and p50/p99 latency for each server, and the receiver's ratio to
the no-op (target: >= 0.5 with a p99 under 50 ms at 32 connections).

Two load generators take turns, each with the same connections:

* an aiohttp client (the headline ``ratio``): always available, but Python
  too, so on a small machine it saturates near the no-op's rate and caps it;
* ``wrk`` (C, one thread), when installed (``make bench`` installs it where it
  can): it does not cap the no-op, so ``wrk.ratio`` is the stricter number.

A third server, the *floor*, takes the same load: the least any receiver must
do per webhook (read the body, parse it as JSON with the receiver's parser,
Avro-encode an envelope with the project's codec, produce it with the
receiver's producer and await the broker's acknowledgement), routed by a
``web.Application`` as the receiver is, and nothing else: no
authentication, no envelope built per request, no metrics. The receiver does
all of that and more, so ``floor_ratio`` is the most it can reach on this
machine with its codec and producer.

The no-op is the usual aiohttp no-op: a handler routed by a
``web.Application``.

Under ``wrk`` the bench also reads each server's CPU time from ``/proc``:
``cpu_us_per_webhook`` (all its threads) and ``main_us_per_webhook`` (the event
loop's thread, which bounds one process). ``wrk.main_thread_ratio`` (the
no-op's main-thread CPU per webhook over the receiver's) is the throughput
ratio to expect where each process's loop has a core to itself and the broker
and the load run elsewhere; on a small machine that shares its cores with
them, the measured ratios fall below it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench._fresh import fresh_stack
from mediaflow.config import REPO_ROOT, Settings
from simulator.pipeline import free_port

_BODY_FILE = REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json"
BODY = _BODY_FILE.read_bytes()
INSTANCE = "3B6XIW-ZTS923-GEAY6V"
SECRET = "bench-webhook-secret"
WARMUP_S = 1.0
WARMUP_RECEIVER_S = 15.0
_FORK = multiprocessing.get_context("fork")


def _serve_receiver(settings: Settings) -> None:
    from mediaflow.producers.webhook.server import serve

    raise SystemExit(asyncio.run(serve(settings)))


async def _accept_noop(request: web.BaseRequest) -> web.Response:
    """The no-op handler: read the body, answer 200."""
    await request.read()
    return web.json_response({"status": "accepted"})


def _serve_noop(port: int) -> None:
    app = web.Application()
    app.router.add_post("/webhooks/wapi", _accept_noop)
    app.router.add_get("/healthz", lambda _r: _ok())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _serve_floor_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    port: int,
    on_stop: Callable[[], Awaitable[object]],
) -> None:
    """Serve ``handler`` on a ``web.Application``, as the receiver is served, until SIGTERM."""
    app = web.Application()
    app.router.add_post("/webhooks/wapi", handler)
    app.router.add_get("/healthz", lambda _r: _ok())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await on_stop()


def _serve_floor(settings: Settings) -> None:
    from mediaflow.codec import AvroCodec
    from mediaflow.config import Secret
    from mediaflow.events import Provider, WebhookReceived
    from mediaflow.kafka.topics import load_layout
    from mediaflow.producers.webhook.envelope import build_record
    from mediaflow.producers.webhook.producer import AsyncProducer
    from mediaflow.producers.webhook.validation import parse_json
    from mediaflow.providers import read_envelope
    from mediaflow.tenants import Tenant

    codec = AvroCodec()
    producer = AsyncProducer.from_settings(settings)
    topic = load_layout(settings.kafka).webhooks
    # One envelope built in advance: the floor pays for encoding it, not for filling it in.
    record = build_record(
        provider=Provider.WAPI,
        tenant=Tenant(INSTANCE, "bench", "wapi", Secret(SECRET), Secret("")),
        fields=read_envelope(Provider.WAPI, json.loads(BODY)),
        body=BODY,
        request_headers=[("Content-Type", "application/json")],
        received_at=datetime.now(UTC),
        fingerprint=codec.fingerprint_of(WebhookReceived),
    )

    async def accept(request: web.Request) -> web.Response:
        parse_json(await request.read())
        await producer.send(topic, record.key, codec.encode(record.event), record.headers)
        return web.json_response({"status": "accepted"})

    asyncio.run(_serve_floor_app(accept, settings.webhook_port, on_stop=producer.close))


async def _ok() -> web.Response:
    return web.json_response({"status": "alive"})


async def _load(url: str, duration_s: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + WARMUP_S
        stop_at = measure_from + duration_s

        async def client() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
                if now >= measure_from:
                    if ok:
                        latencies.append(done - now)
                    else:
                        errors += 1

        await asyncio.gather(*(client() for _ in range(connections)))
    return {"latencies": latencies, "errors": errors, "seconds": duration_s}


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput and latency percentiles over every measured round."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    seconds = sum(r["seconds"] for r in rounds)
    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
        "per_s": round(len(latencies) / seconds, 1),
        "per_s_by_round": [round(len(r["latencies"]) / r["seconds"], 1) for r in rounds],
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)
        if latencies
        else None,
    }


def _load_process(url: str, duration_s: float, connections: int, out: Any) -> None:
    out.send(asyncio.run(_load(url, duration_s, connections)))


def _measure(url: str, duration_s: float, connections: int) -> dict[str, Any]:
    """Run the load generator in its own process and return its numbers."""
    receive, send = _FORK.Pipe(duplex=False)
    process = _FORK.Process(target=_load_process, args=(url, duration_s, connections, send))
    process.start()
    result: dict[str, Any] = receive.recv()
    process.join()
    return result


def _wrk(url: str, duration_s: float, connections: int, script: Path) -> dict[str, Any]:
    """One ``wrk`` run (one thread, ``connections`` connections): its rate and latencies."""
    seconds = max(1, math.ceil(duration_s))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    return _parse_wrk(done.stdout, seconds)


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _parse_wrk(out: str, seconds: float) -> dict[str, Any]:
    """Read p50, p99, non-2xx answers and 2xx answers/s from wrk's ``--latency`` report.

    wrk's own Requests/sec counts every answer; a 503 is not a webhook taken.
    """

    def millis(percentile: str) -> float:
        match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            raise ValueError(f"no {percentile}th percentile in wrk's report:\n{out}")
        return float(match[1]) * _WRK_UNITS[match[2]]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", out, re.MULTILINE)
    if rate is None or total is None:
        raise ValueError(f"no Requests/sec or request count in wrk's report:\n{out}")
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(found[1]) if found else 0
    answered = int(total[1])
    return {
        "per_s": float(rate[1]) * (answered - errors) / answered if answered else 0.0,
        "p50_ms": millis("50"),
        "p99_ms": millis("99"),
        "errors": errors,
        "seconds": seconds,
    }


def _wrk_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput over every wrk round; the worst round's p99 (wrk reports per run).

    Rounds that carry the server's CPU seconds (``cpu_s``, ``main_cpu_s``; see
    :func:`_cpu_seconds`) also give its CPU per webhook taken.
    """
    seconds = sum(r["seconds"] for r in rounds)
    webhooks = sum(r["per_s"] * r["seconds"] for r in rounds)
    summary: dict[str, Any] = {
        "per_s": round(webhooks / seconds, 1),
        "per_s_by_round": [round(r["per_s"], 1) for r in rounds],
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
        "p99_ms": round(max(r["p99_ms"] for r in rounds), 2),
        "errors": sum(r["errors"] for r in rounds),
    }
    if webhooks and all("cpu_s" in r for r in rounds):
        for key, name in (("cpu_s", "cpu_us_per_webhook"), ("main_cpu_s", "main_us_per_webhook")):
            summary[name] = round(sum(r[key] for r in rounds) / webhooks * 1e6, 1)
    return summary


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU seconds process ``pid`` has used: all its threads, and its main thread alone.

    ``None`` where there is no Linux ``/proc``. Throughput on a small machine
    moves with whatever else runs; CPU per webhook says what the server itself
    costs, and the main thread's share is what bounds one process.
    """

    def used(stat: Path) -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    proc = Path(f"/proc/{pid}")
    try:
        return used(proc / "stat"), used(proc / "task" / str(pid) / "stat")
    except OSError:
        return None


def _wait_healthy(port: int, path: str, timeout_s: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not ready after {timeout_s} s")


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.pid is not None and process.is_alive():
        os.kill(process.pid, signal.SIGTERM)
    process.join(timeout=30)


def run(
    settings: Settings, duration_s: float = 10.0, connections: int = 32, rounds: int = 4
) -> dict[str, Any]:
    """Measure the receiver, the floor and the no-op handler under the same load.

    The three servers run for the whole bench; the load goes to each in turn,
    ``rounds`` times, starting from a different one every round, so that a
    slow moment of the machine does not land on one side only.

    Args:
        settings: a cluster and a topic prefix whose topics exist (``bench._fresh.fresh_stack``).
        duration_s: measured seconds per server in all (each round: a 1 s warm-up, then
            ``duration_s / rounds``).
        connections: concurrent client connections.
        rounds: how many times the load goes to each server.

    Returns:
        Each server's numbers, ``ratio`` (receiver / no-op) and ``floor_ratio``
        (floor / no-op) under the aiohttp client, and the same under ``wrk``.
    """
    names = ("receiver", "floor", "noop")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    wrk_results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with_wrk = shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory() as directory:
        secret = Path(directory) / "secret"
        secret.write_text(SECRET)
        tenants = Path(directory) / "tenants.toml"
        tenants.write_text(
            f'[tenants."{INSTANCE}"]\nclient_id = "bench"\nprovider = "wapi"\n'
            f'webhook_secret_file = "{secret}"\n'
        )
        ports = {name: free_port() for name in names}

        def settings_on(port: int) -> Settings:
            return dataclasses.replace(
                settings, tenants_file=tenants, webhook_port=port, log_level="warning"
            )

        servers = {
            "receiver": _FORK.Process(
                target=_serve_receiver, args=(settings_on(ports["receiver"]),)
            ),
            "floor": _FORK.Process(target=_serve_floor, args=(settings_on(ports["floor"]),)),
            "noop": _FORK.Process(target=_serve_noop, args=(ports["noop"],)),
        }
        for server in servers.values():
            server.start()
        try:
            _wait_healthy(ports["receiver"], "/readyz")
            _wait_healthy(ports["floor"], "/healthz")
            _wait_healthy(ports["noop"], "/healthz")
            urls = {
                "receiver": f"http://127.0.0.1:{ports['receiver']}/webhooks/wapi?token={SECRET}",
                "floor": f"http://127.0.0.1:{ports['floor']}/webhooks/wapi",
                "noop": f"http://127.0.0.1:{ports['noop']}/webhooks/wapi",
            }
            # Untimed: fresh topics and connections, and a broker JVM that may have just
            # started (its produce path is interpreted until the JIT has seen some load).
            _measure(urls["receiver"], WARMUP_RECEIVER_S, connections)
            _measure(urls["floor"], WARMUP_S, connections)
            _measure(urls["noop"], WARMUP_S, connections)
            script = Path(directory) / "post.lua"
            script.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = io.open({json.dumps(str(_BODY_FILE))}):read('*a')\n"
            )
            for round_ in range(rounds):
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    results[name].append(_measure(urls[name], duration_s / rounds, connections))
                    if with_wrk:
                        pid = servers[name].pid or 0
                        before = _cpu_seconds(pid)
                        result = _wrk(urls[name], duration_s / rounds, connections, script)
                        after = _cpu_seconds(pid)
                        if before and after:
                            result["cpu_s"] = after[0] - before[0]
                            result["main_cpu_s"] = after[1] - before[1]
                        wrk_results[name].append(result)
        finally:
            for server in servers.values():
                _stop(server)
    summaries = {name: _summary(results[name]) for name in names}
    out: dict[str, Any] = {
        "connections": connections,
        "duration_s": duration_s,
        "rounds": rounds,
        "body_bytes": len(BODY),
        **summaries,
        "ratio": _ratio(summaries["receiver"], summaries["noop"]),
        "floor_ratio": _ratio(summaries["floor"], summaries["noop"]),
    }
    if with_wrk:
        wrk = {name: _wrk_summary(wrk_results[name]) for name in names}
        wrk["ratio"] = _ratio(wrk["receiver"], wrk["noop"])
        wrk["floor_ratio"] = _ratio(wrk["floor"], wrk["noop"])
        if "main_us_per_webhook" in wrk["receiver"] and "main_us_per_webhook" in wrk["noop"]:
            wrk["main_thread_ratio"] = round(
                wrk["noop"]["main_us_per_webhook"] / wrk["receiver"]["main_us_per_webhook"], 3
            )
        out["wrk"] = wrk
    else:
        out["wrk"] = {"status": "wrk not installed (Debian: apt-get install wrk)"}
    return out


def _ratio(ours: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    return round(ours["per_s"] / baseline["per_s"], 3) if baseline["per_s"] else None


def main() -> None:
    """Parse arguments, run the bench against the local stack, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="turns each server takes")
    args = parser.parse_args()
    from mediaflow import logging as mflog

    settings = Settings.from_env()
    mflog.configure(fmt="json", level="warning")
    with fresh_stack(settings) as fresh:
        print(json.dumps(run(fresh, args.duration, args.connections, args.rounds), indent=2))


if __name__ == "__main__":
    main()
