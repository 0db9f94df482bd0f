"""A callback receiver that verifies Standard Webhooks signatures, and the notifier's wiring."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.processors.notifier.stage import STAGE
from simulator.scratch import with_retry_delays
from tests.support.projection import info

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@dataclass
class Delivery:
    path: str
    webhook_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """Answers each path as its script says (``[503, 200]``: first 503, then 200 for ever)."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    delivered: list[Delivery] = field(default_factory=list)
    refused_signatures: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        body = await request.read()
        try:
            payload = Webhook(SECRET).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused_signatures += 1
            return web.Response(status=401)
        script = self.scripts.get(path, [200])
        status = script[min(self.hits[path], len(script)) - 1]
        if 200 <= status < 300:
            self.delivered.append(Delivery(path, request.headers["webhook-id"], payload))
        headers = {"Retry-After": "1"} if status == 503 else {}
        if status in (302, 307):
            headers["Location"] = "/elsewhere"
        return web.Response(status=status, headers=headers)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        await runner.cleanup()


def fast_topics(tmp_path: Path) -> Path:
    """deploy/topics.toml with 1 s download retry tiers and two 1 s notify retry tiers."""
    text = with_retry_delays((REPO_ROOT / "deploy" / "topics.toml").read_text(), (1, 1))
    text = text.split("# The notifier's retry tiers", 1)[0] + "".join(
        f'[[topic]]\nname = "media.notify-retry.t{i}"\nrole = "notify_retry"\ndelay_s = 1\n'
        'partitions = 3\nretention_ms = 604800000\ncleanup_policy = "delete"\n\n'
        for i in (1, 2)
    )
    path = tmp_path / "topics-notify.toml"
    path.write_text(text)
    return path


def registry(tmp_path: Path, clients: dict[str, dict[str, object]]) -> Path:
    """A tenant registry declaring ``clients`` (``{"c1": {"callback_url": ...}}``)."""
    secret = tmp_path / "callback.secret"
    secret.write_text(SECRET)
    lines = []
    for client_id, entry in clients.items():
        lines.append(f'[clients."{client_id}"]')
        lines.append(f'callback_secret_file = "{secret}"')
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    path = tmp_path / "tenants-notify.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_notifier(settings: Settings, *, idle_exit_s: float) -> None:
    """Run the notifier in this (async) test until idle, wired as ``mediaflow run`` wires it."""
    async with STAGE.open(settings, STAGE.clients(settings)) as worker:
        await worker.run(idle_exit_s=idle_exit_s)


def described(event: Any, client: str, instance: str = "i1", message: str = "wamid.1") -> Any:
    """``event`` carrying the MediaInfo of a media of ``client``."""
    described_info = dataclasses.replace(info(client=client, instance=instance), message_id=message)
    return dataclasses.replace(event, info=described_info)
