"""A platform's callback endpoint, as the demo plays it: verify every signature, count deliveries.

:class:`CallbackReceiver` listens on loopback in a background thread (the
standard library's threading HTTP server: a test double needs no event
loop). Each POST is verified with the ``standardwebhooks`` package exactly as
the README's Django view does; a valid one is answered 204 and recorded by
its ``webhook-id`` (so a redelivery counts once), an invalid one 401.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mediaflow.config import Settings
from mediaflow.tenants import TenantRegistry
from simulator.pipeline import Run

MAX_BODY_BYTES = 1024 * 1024


class CallbackReceiver:
    """Verifies and records signed notifications on ``http://host:port/hooks``.

    Args:
        secret: the Standard Webhooks secret the notifier signs with (``whsec_...``).
        host: where to listen (loopback).
        port: 0 for a free one.
    """

    def __init__(self, secret: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._verifier = Webhook(secret)
        self._lock = threading.Lock()
        self.deliveries: dict[str, dict[str, Any]] = {}
        """Verified notifications by webhook-id."""
        self.received_at: dict[str, float] = {}
        """Media id -> when its first verified notification arrived (epoch seconds)."""
        self.attempts = 0
        self.refused = 0
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mediaflow-callbacks", daemon=True
        )

    @property
    def url(self) -> str:
        """The callback URL to declare for the demo's clients."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def media_ids(self) -> set[str]:
        """The media every verified notification was about."""
        with self._lock:
            return {note["data"]["media_id"] for note in self.deliveries.values()}

    def start(self) -> CallbackReceiver:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _record(self, body: bytes, headers: dict[str, str]) -> bool:
        try:
            note = self._verifier.verify(body, headers)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.attempts += 1
                self.refused += 1
            return False
        with self._lock:
            self.attempts += 1
            self.deliveries[headers.get("webhook-id", "")] = note
            self.received_at.setdefault(str(note["data"]["media_id"]), time.time())
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                self.send_response(204 if receiver._record(body, headers) else 401)
                self.end_headers()

            def log_message(self, *_args: object) -> None:  # the demo prints its own summary
                pass

        return Handler


def with_callbacks(run: Run, url: str, secret: str) -> Run:
    """``run`` with a tenant registry that sends every client's callbacks to ``url``."""
    registry = TenantRegistry.load(run.settings.tenants_file, run.environ)
    secret_file = run.directory / "callback.secret"
    secret_file.write_text(secret)
    tenants = run.directory / "tenants.toml"
    clients = sorted({t.client_id for t in registry.tenants.values()})
    tenants.write_text(
        run.settings.tenants_file.read_text()
        + "".join(
            f'\n[clients."{c}"]\ncallback_url = "{url}"\ncallback_secret_file = "{secret_file}"\n'
            for c in clients
        )
    )
    environ = {**run.environ, "MEDIAFLOW_TENANTS_FILE": str(tenants)}
    return dataclasses.replace(run, settings=Settings.from_env(environ), environ=environ)


def wait_callbacks(receiver: CallbackReceiver, expected: set[str], timeout_s: float) -> None:
    """Wait until a verified callback arrived for every media of ``expected``, or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not expected <= receiver.media_ids() and time.monotonic() < deadline:
        time.sleep(0.5)


def new_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` and 32 random bytes in base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def summary(receiver: CallbackReceiver, expected: set[str]) -> str:
    """``callbacks delivered N / expected M`` and what was refused or missing."""
    got = receiver.media_ids() & expected
    line = f"callbacks delivered {len(got)} / expected {len(expected)}"
    if receiver.refused:
        line += f"; {receiver.refused} refused (bad signature)"
    missing = sorted(expected - got)
    if missing:
        line += f"; missing: {json.dumps(missing[:5])}{' ...' if len(missing) > 5 else ''}"
    return line


__all__ = ["CallbackReceiver", "new_secret", "summary", "wait_callbacks", "with_callbacks"]
