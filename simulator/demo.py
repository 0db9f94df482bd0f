"""``make demo``: simulated providers -> the whole pipeline -> a summary; exit 0 = nothing lost.

``python -m simulator.demo [--count 200] [--seed 7] [--timeout 240] [--keep-topics]``

Each demo is a fresh, independent run (:class:`simulator.pipeline.Run`): its
own topic prefix and bucket (both named ``demo-<UTC time>-<pid>``), projection
database and logs under ``.stack/runs/<run id>/``, and free ports, so it never
sees another run's records and can run beside the tests. The bucket and the
database stay afterwards, to look at; the topics are deleted unless
``--keep-topics``.

What happens:

1. the fake W-API and CDN start in this process, with a little trouble: a
   share of 500/502/503/429 answers, two expired media and one tampered
   ``.enc`` file;
2. every role starts as a child process configured to use them (short retry
   tiers: 1 s, 2 s, 4 s);
3. a seeded mix of webhooks (every provider, wrapper and kind, including
   malformed ones) is posted to the receiver;
4. the demo waits, with a progress line, until the projection shows every
   media of every accepted webhook in a terminal state (stored or dead-lettered);
5. it checks every stored object's bytes against the sample's sha256, asks the
   API about one media, waits until the notifier's signed callbacks reached the
   demo's receiver (:mod:`simulator.callbacks`) for every stored or
   dead-lettered media, prints the summary, and stops every child.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.errors import MediaflowError
from mediaflow.media_state import MediaRow
from mediaflow.storage.s3 import s3_client
from mediaflow.tenants import TenantRegistry
from simulator.callbacks import CallbackReceiver, new_secret, wait_callbacks, with_callbacks
from simulator.callbacks import summary as callback_summary
from simulator.faults import Faults
from simulator.media import MediaLibrary, SampleMedia
from simulator.pipeline import ROLES, Pipeline, Run, terminal_rows
from simulator.report import TERMINAL, Outcome, accepted_at, render, summarize
from simulator.sender import SendSummary, send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import Webhook, WebhookFactory

LOCAL_ENV = REPO_ROOT / "deploy" / "local.env"
S3_DATA = REPO_ROOT / ".stack" / "s3-data"
ERROR_RATE = 0.08
EXPIRED_COUNT = 2
TAMPERED_COUNT = 1
MAX_MEDIA_BYTES = 1_000_000
_POLL_S = 1.0
CALLBACK_WAIT_S = 60.0


def local_environment(environ: Mapping[str, str], env_file: Path = LOCAL_ENV) -> dict[str, str]:
    """``environ`` plus the demo secrets of ``deploy/local.env`` it lacks.

    ``make`` exports that file already; this lets ``python -m simulator.demo``
    work on its own too.
    """
    env = dict(environ)
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                env.setdefault(name.strip(), value.strip())
    return env


def inject_faults(batch: Iterable[Webhook], faults: Faults) -> tuple[list[str], list[str]]:
    """Expire a couple of W-API media and tamper with one CDN-only media; return their CDN ids.

    The tampered one comes from an Evolution webhook: that tenant has no W-API
    token, so its media can only come from the CDN, where the flipped byte is.
    """
    hooks = [h for h in batch if h.kind == "media" and len(h.media) == 1]
    expired = [h.media[0].cdn_id for h in hooks if h.provider == "wapi"][:EXPIRED_COUNT]
    tampered = [h.media[0].cdn_id for h in hooks if h.provider == "evolution"][:TAMPERED_COUNT]
    faults.expired.update(expired)
    faults.corrupt.update(tampered)
    return expired, tampered


def samples_by_media_id(summary: SendSummary) -> dict[str, SampleMedia]:
    """Media id -> the sample it was made from, where a webhook pairs them one to one."""
    pairs: dict[str, SampleMedia] = {}
    for delivery in summary.accepted:
        if len(delivery.media_ids) == len(delivery.webhook.media):
            pairs.update(zip(delivery.media_ids, delivery.webhook.media, strict=True))
    return pairs


def verify_objects(
    settings: Settings, rows: Iterable[MediaRow], samples: Mapping[str, SampleMedia]
) -> dict[str, bool]:
    """Media id -> whether the stored object's bytes hash to the row's and the sample's sha256."""
    s3 = s3_client(settings.s3)
    verified: dict[str, bool] = {}
    for row in rows:
        if row.status != "stored" or not row.object_key:
            continue
        digest = hashlib.sha256()
        body = s3.get_object(Bucket=row.bucket or settings.s3.bucket, Key=row.object_key)["Body"]
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
        sample = samples.get(row.media_id)
        expected = {row.sha256, sample.sha256_hex} if sample else {row.sha256}
        verified[row.media_id] = expected == {digest.hexdigest()}
    return verified


def wait_terminal(
    pipeline: Pipeline, media_ids: set[str], timeout_s: float
) -> dict[str, MediaRow | None]:
    """Poll the projection until every media is terminal or ``timeout_s`` passes.

    Prints a progress line; raises if a role dies meanwhile.
    """
    store = pipeline.run.open_store()
    deadline = time.monotonic() + timeout_s
    last = -1
    try:
        while True:
            rows, done = terminal_rows(store, media_ids, TERMINAL)
            left = deadline - time.monotonic()
            line = f"  terminal {done}/{len(media_ids)}  ({max(0, left):.0f} s left)"
            finished = done == len(media_ids) or left <= 0
            if sys.stdout.isatty():
                print(f"\r{line} ", end="\n" if finished else "", flush=True)
            elif finished or done != last:  # a log file gets one line per change
                print(line, flush=True)
            last = done
            if finished:
                return rows
            pipeline.ensure_alive()
            time.sleep(_POLL_S)
    finally:
        store.close()


def ask_api(run: Run, media_id: str) -> str:
    """GET one media from the read API; a one-line description of the answer."""
    request = urllib.request.Request(
        f"{run.api_url}/media/{media_id}",
        headers={"Authorization": f"Bearer {run.settings.api_token.reveal()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
            return (
                f"HTTP {response.status}: status={body.get('status')} key={body.get('object_key')}"
            )
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({exc})"


def where_to_look(run: Run, outcome: Outcome, media_id: str | None) -> str:
    """Lines saying where the files are and how to ask the API about them."""
    settings = run.settings
    lines = [f"bucket {settings.s3.bucket} at {settings.s3.endpoint_url}, e.g."]
    lines += [f"  s3://{settings.s3.bucket}/{key}" for key in outcome.examples]
    lines.append(f"on disk (S3Proxy filesystem): {S3_DATA / settings.s3.bucket}/")
    if outcome.examples:
        lines.append(f"  {S3_DATA / settings.s3.bucket / outcome.examples[0]}")
    lines.append(f"logs and projection database: {run.directory}/")
    if media_id:
        lines += [
            "ask the API (start it again on this run's database first):",
            f"  MEDIAFLOW_PROJECTION_DB_URL={settings.projection_db_url} "
            f"MEDIAFLOW_S3_BUCKET={settings.s3.bucket} .venv/bin/mediaflow serve api &",
            f"  curl -H 'Authorization: Bearer {settings.api_token.reveal()}' "
            f"http://{settings.api_host}:8081/media/{media_id}",
        ]
    return "\n".join(lines)


def _secrets(settings: Settings, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    registry = TenantRegistry.load(settings.tenants_file, env)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    return secrets, tokens


def demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run the demo; 0 when every accepted media ended terminal and every stored object is right."""
    env = local_environment(environ)
    secrets, tokens = _secrets(Settings.from_env(env), env)
    faults = Faults(error_rate=ERROR_RATE, seed=args.seed)
    library = MediaLibrary(args.seed, max_size=MAX_MEDIA_BYTES)
    secret = new_secret()
    with SimulatorThread(library, faults, tokens) as sim, CallbackReceiver(secret) as receiver:
        run = Run.create("demo", wapi_url=sim.wapi_url, cdn_url=sim.cdn_url, environ=env)
        run = with_callbacks(run, receiver.url, secret)
        factory = WebhookFactory(
            library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=args.seed
        )
        batch = factory.mixed(args.count)
        expired, tampered = inject_faults(batch, faults)
        print(f"demo run {run.run_id}: {len(batch)} webhooks, {len(library)} media")
        print(
            f"  faults: {ERROR_RATE:.0%} HTTP errors on W-API and CDN, "
            f"{len(expired)} expired, {len(tampered)} tampered"
        )
        run.prepare()
        with Pipeline(run, (*ROLES, "notifier")) as pipeline:
            print(f"  pipeline starting (logs in {run.directory}/)", flush=True)
            pipeline.wait_assigned()
            print("  pipeline up: every consumer owns its partitions", flush=True)
            summary = asyncio.run(
                send_webhooks(batch, base_url=run.webhook_url, secrets=secrets, concurrency=16)
            )
            print(summary.table())
            expected = summary.media_ids() | summary.invalid_media_ids()
            rows = wait_terminal(pipeline, expected, args.timeout)
            samples = samples_by_media_id(summary)
            present = [row for row in rows.values() if row is not None]
            verified = verify_objects(run.settings, present, samples)
            outcome = summarize(expected, rows, accepted_at(summary.deliveries), verified)
            example = next((r.media_id for r in present if r.status == "stored"), None)
            api_answer = ask_api(run, example) if example else "no stored media to ask about"
            # Media the detector refused have no client to call back (no MediaDetected).
            told = {r.media_id for r in present if r.status in TERMINAL and r.client_id}
            wait_callbacks(receiver, told, CALLBACK_WAIT_S)
            callbacks = callback_summary(receiver, told)
        if not args.keep_topics:
            run.delete_topics()
    unanswered = [d for d in summary.rejected if d.status == 0 or d.status >= 500]
    print()
    print(render(outcome))
    print(f"API GET /media/{example}: {api_answer}")
    print(callbacks)
    print(where_to_look(run, outcome, example))
    if unanswered:
        print(f"LOST: {len(unanswered)} webhooks got no answer or a 5xx")
    uncalled = not told <= receiver.media_ids()
    if uncalled:
        print("LOST: callbacks of some stored or dead-lettered media never arrived")
    if outcome.lost or unanswered or uncalled:
        print("RESULT: FAILED, something was lost (see above)")
        return 1
    print("RESULT: nothing lost")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the demo."""
    parser = argparse.ArgumentParser(prog="python -m simulator.demo", description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="webhooks to send")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same media and bodies")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait, at most")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics")
    args = parser.parse_args(argv)
    try:
        return demo(args, os.environ)
    except MediaflowError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
