"""``python -m simulator serve|send``: the fake W-API + CDN, and the webhook sender.

Both sides rebuild the same media from the same ``--seed``, ``--count`` and
``--max-size``: ``serve`` replays the webhook mix ``send`` will produce, so
every media a webhook names exists on the fake CDN. Tokens and webhook secrets
come from the tenant registry (``deploy/tenants.toml`` + ``deploy/local.env``),
so the defaults line up with the demo tenants.

The simulator is not part of the product (the wheel leaves it out), so it has
its own entry point rather than a ``mediaflow`` subcommand; run it from the
repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from mediaflow import logging as mflog
from mediaflow.config import Settings
from mediaflow.config_secrets import secret_values
from mediaflow.errors import EXIT_CONFIG, ConfigError, MediaflowError
from mediaflow.tenants import TenantRegistry
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.sender import send_webhooks
from simulator.servers import running_simulator
from simulator.webhooks import Webhook, WebhookFactory

DEFAULT_WAPI_PORT = 8090
DEFAULT_CDN_PORT = 8091


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="fake W-API/CDN and a webhook sender"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")

    serve = actions.add_parser("serve", help="run the fake W-API and CDN in the foreground")
    _batch_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--wapi-port", type=int, default=DEFAULT_WAPI_PORT)
    serve.add_argument("--cdn-port", type=int, default=DEFAULT_CDN_PORT)
    serve.add_argument("--error-rate", type=float, default=0.0, help="share of HTTP errors")
    serve.add_argument("--hang-rate", type=float, default=0.0, help="share of hanging requests")
    serve.add_argument("--latency", type=float, default=0.0, help="fixed latency, seconds")
    serve.add_argument("--jitter", type=float, default=0.0, help="extra random latency, seconds")
    serve.add_argument(
        "--expired-rate", type=float, default=0.0, help="share of media that have expired"
    )
    serve.set_defaults(handler=serve_command)

    send = actions.add_parser("send", help="post a seeded mix of webhooks; print a summary")
    _batch_args(send)
    send.add_argument("--rate", type=float, default=None, help="webhooks/s (default: max)")
    send.add_argument("--concurrency", type=int, default=16)
    send.add_argument("--webhook-url", default=None, help="receiver base URL")
    send.add_argument("--cdn-url", default=f"http://127.0.0.1:{DEFAULT_CDN_PORT}")
    send.add_argument("--files-url", default=f"http://127.0.0.1:{DEFAULT_WAPI_PORT}")
    send.set_defaults(handler=send_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator command; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"simulator: configuration error: {mflog.scrub(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    mflog.configure(fmt=settings.log_format, level=settings.log_level)
    mflog.register_secrets(secret_values(settings))
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except MediaflowError as exc:
        print(f"simulator {args.action}: {mflog.scrub(exc.message)}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1


def _batch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="same seed, same media and bodies")
    parser.add_argument("--count", type=int, default=200, help="webhooks in the batch")
    parser.add_argument(
        "--max-size", type=int, default=2_000_000, help="cap on sample media sizes, bytes"
    )


def build_batch(
    args: argparse.Namespace, cdn_url: str, files_url: str
) -> tuple[MediaLibrary, list[Webhook]]:
    """Return the library and the webhook batch both commands agree on.

    Args:
        args: ``--seed``, ``--count`` and ``--max-size``.
        cdn_url: base URL put in WAProto ``url`` fields (does not change the media).
        files_url: base URL of Z-API links (does not change the media).

    """
    library = MediaLibrary(args.seed, max_size=args.max_size)
    factory = WebhookFactory(library, cdn_url=cdn_url, files_url=files_url, seed=args.seed)
    return library, factory.mixed(args.count)


def _registry(settings: Settings) -> TenantRegistry:
    try:
        return TenantRegistry.load(settings.tenants_file)
    except ConfigError as exc:
        print(f"simulator: no tenants ({exc.message}); continuing without", file=sys.stderr)
        return TenantRegistry({})


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the fake W-API and CDN until Ctrl-C or SIGTERM."""
    library, _ = build_batch(args, "", "")
    faults = Faults(
        error_rate=args.error_rate,
        hang_rate=args.hang_rate,
        latency_s=args.latency,
        jitter_s=args.jitter,
        seed=args.seed,
    )
    if args.expired_rate:
        media = sorted(library, key=lambda m: m.cdn_id)
        step = max(1, round(1 / args.expired_rate))
        faults.expired.update(m.cdn_id for m in media[::step])
    tokens = {
        instance: tenant.wapi_token.reveal()
        for instance, tenant in _registry(settings).tenants.items()
        if tenant.wapi_token
    }
    return asyncio.run(_serve(args, library, faults, tokens))


async def _serve(
    args: argparse.Namespace, library: MediaLibrary, faults: Faults, tokens: dict[str, str]
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_simulator(
        library, faults, tokens, host=args.host, wapi_port=args.wapi_port, cdn_port=args.cdn_port
    ) as sim:
        print(
            f"simulator: {len(library)} media (seed {args.seed}), "
            f"{len(faults.expired)} expired, {len(tokens)} W-API instance(s)\n"
            f"  W-API  {sim.wapi_url}/v1/message/download-media\n"
            f"  CDN    {sim.cdn_url}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        await stop.wait()
        print(
            f"simulator: answered {sim.calls.count('wapi')} W-API, "
            f"{sim.calls.count('cdn')} CDN and {sim.calls.count('files')} file requests"
        )
    return 0


def send_command(args: argparse.Namespace, settings: Settings) -> int:
    """Post the batch to the receiver and print the summary; 1 if any got no answer."""
    _, batch = build_batch(args, args.cdn_url, args.files_url)
    secrets = {
        instance: tenant.webhook_secret.reveal()
        for instance, tenant in _registry(settings).tenants.items()
    }
    base = args.webhook_url or f"http://{settings.webhook_host}:{settings.webhook_port}"
    summary = asyncio.run(
        send_webhooks(
            batch, base_url=base, secrets=secrets, rate=args.rate, concurrency=args.concurrency
        )
    )
    print(summary.table())
    return 1 if summary.by_status().get(0) else 0


__all__ = ["build_batch", "build_parser", "main"]
