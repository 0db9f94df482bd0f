"""``mediaflow diagnose``: a checklist of everything mediaflow needs, with a fix per failure.

Checks, in order (a later check still runs when an earlier one failed, so one
run lists every problem):

1. the broker answers a metadata request;
2. every declared topic exists with its declared configuration (drift listed),
   and every broker its partitions name is up with every partition in sync
   (a broker down and the partitions left under-replicated are named);
3. the bucket exists and a probe object can be written, read back and deleted;
4. the projection database opens (migrations run on open) and answers a query;
5. each W-API tenant's token is accepted. The harmless authenticated call is
   ``POST /v1/message/download-media`` with an empty JSON body: W-API checks
   the bearer token before it looks at the body, so 401/403 means the token is
   refused and any other answer (typically 400 for the missing fields) means
   it was accepted. Nothing is downloaded. The call goes through the
   downloader's guarded client (:mod:`mediaflow.processors.downloader.client`): the SSRF
   guard checks every hop and the token never follows a redirect to another
   origin;
6. each callback declared in the tenant registry loads (URL, secret) and its
   host resolves only to addresses the outgoing guard allows it (the notifier
   sends nothing here: there is no harmless signed request);
7. the webhook receiver answers ``GET /healthz`` (a plain request to our own
   receiver, which carries no credential).
"""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException

from mediaflow.config import Settings
from mediaflow.errors import (
    BlockedUrl,
    MediaflowError,
    ProviderUnavailable,
    StorageCause,
    StorageUnavailable,
)
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.replication import read_replication
from mediaflow.kafka.topics import check, load_layout
from mediaflow.processors.downloader.client import GuardedClient, guarded_session
from mediaflow.processors.notifier.callbacks import Callback, Callbacks
from mediaflow.storage.projection import open_store
from mediaflow.storage.s3 import error_code, s3_client, translate
from mediaflow.tenants import Tenant, TenantRegistry
from mediaflow.url_guard import UrlPolicy

PROBE_PREFIX = ".mediaflow-probe/"
OK_MARK = "✔"
FAIL_MARK = "✘"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist; ``hint`` says what to do when it failed."""

    name: str
    ok: bool
    detail: str = ""
    hint: str = ""

    def line(self) -> str:
        """``✔ name: detail`` or ``✘ name: detail`` followed by ``-> hint``."""
        text = f"{OK_MARK if self.ok else FAIL_MARK} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )
        return text if self.ok or not self.hint else f"{text}\n    -> {self.hint}"


def check_broker(settings: Settings, timeout: float) -> Check:
    """The broker answers a metadata request."""
    where = settings.kafka.bootstrap_servers
    try:
        metadata = admin_client(settings.kafka).list_topics(timeout=timeout)
    except KafkaException as exc:
        return Check(
            "broker",
            False,
            f"{where} did not answer: {exc.args[0].str()}",
            "start Kafka (`deploy/stack.sh up`) or fix MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS",
        )
    return Check("broker", True, f"{where} ({len(metadata.brokers)} broker(s))")


def check_topics(settings: Settings, timeout: float) -> Check:
    """Every declared topic exists with its declared configuration."""
    try:
        layout = load_layout(settings.kafka)
        drift = check(admin_client(settings.kafka), layout.specs, timeout=timeout)
    except MediaflowError as exc:
        return Check("topics", False, exc.message, "fix the broker first, then re-run")
    if drift:
        shown = "; ".join(str(d) for d in drift[:5]) + (" ..." if len(drift) > 5 else "")
        return Check(
            "topics", False, f"{len(drift)} difference(s): {shown}", "run `mediaflow topics apply`"
        )
    return Check("topics", True, f"{len(layout.specs)} topic(s) as declared")


def check_replication(settings: Settings, timeout: float) -> Check:
    """Every broker the topics' partitions name is up, and every partition is in sync."""
    try:
        state = read_replication(
            admin_client(settings.kafka), load_layout(settings.kafka).specs, timeout
        )
    except MediaflowError as exc:
        return Check("replication", False, exc.message, "fix the broker first, then re-run")
    if state.ok:
        return Check("replication", True, state.summary())
    hint = (
        "start the broker(s) that are down; their partitions catch up by themselves"
        if state.down
        else "wait for the replicas to catch up; if they do not, read the brokers' logs"
    )
    return Check("replication", False, state.summary(), hint)


_ENDPOINT_HINT = "check MEDIAFLOW_S3_ENDPOINT_URL and that the S3 server is running"
_BUCKET_HINTS = {
    StorageCause.CREDENTIALS: "fix MEDIAFLOW_S3_ACCESS_KEY / MEDIAFLOW_S3_SECRET_KEY; "
    "downloaders wait (storage_unavailable_waiting, cause=credentials) until restarted with them",
    StorageCause.ACCESS_DENIED: "fix MEDIAFLOW_S3_ACCESS_KEY / MEDIAFLOW_S3_SECRET_KEY, or let "
    "the key list, read, write and delete objects in the bucket",
}


def check_bucket(settings: Settings, s3: Any) -> Check:
    """The bucket exists and a probe object can be written, read back and deleted."""
    bucket = settings.s3.bucket
    key = f"{PROBE_PREFIX}{uuid.uuid4()}"
    body = b"mediaflow diagnose probe"
    try:
        s3.head_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        read = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else ""
        if code in ("404", "NoSuchBucket", "NotFound"):
            return Check(
                "bucket", False, f"bucket {bucket!r} does not exist", "run `mediaflow storage init`"
            )
        error = translate(exc, bucket=bucket)
        cause = error.cause if isinstance(error, StorageUnavailable) else None
        return Check("bucket", False, error.message, _BUCKET_HINTS.get(cause, _ENDPOINT_HINT))
    if read != body:
        return Check(
            "bucket",
            False,
            "the probe object read back differs from what was written",
            "the S3 server corrupts objects: do not use it",
        )
    return Check("bucket", True, f"{bucket}: write, read and delete work")


def check_projection(settings: Settings) -> Check:
    """The projection database opens, is migrated (on open) and answers a query."""
    try:
        store = open_store(settings.projection_db_url)
        try:
            stats = store.stats()
        finally:
            store.close()
    except (MediaflowError, OSError) as exc:
        detail = exc.message if isinstance(exc, MediaflowError) else str(exc)
        return Check(
            "projection",
            False,
            detail,
            "check MEDIAFLOW_PROJECTION_DB_URL (and that PostgreSQL is running)",
        )
    except Exception as exc:  # sqlite3/psycopg errors: a broken or foreign database
        return Check(
            "projection",
            False,
            f"{type(exc).__name__}: {exc}",
            "the database is not a mediaflow projection; point "
            "MEDIAFLOW_PROJECTION_DB_URL elsewhere or rebuild it",
        )
    return Check("projection", True, f"{stats.total} media")


def http_status(url: str, timeout: float) -> int:
    """GET ``url`` directly (no proxy); return the HTTP status.

    For the receiver's own health check only: nothing secret goes with it.

    Args:
        url: where to ask.
        timeout: seconds for connecting and reading.

    Raises:
        OSError: no answer (refused, timed out, DNS).
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def check_tokens(settings: Settings, registry: TenantRegistry, timeout: float) -> list[Check]:
    """Each W-API tenant's token is accepted (see the module docstring for the call made)."""
    return asyncio.run(_check_tokens(settings, registry, timeout))


async def _check_tokens(
    settings: Settings, registry: TenantRegistry, timeout: float
) -> list[Check]:
    policy = UrlPolicy.from_settings(settings.downloader)
    url = f"{settings.downloader.wapi_base_url.rstrip('/')}/v1/message/download-media"
    checks = []
    async with guarded_session(policy) as session:
        client = GuardedClient(session, policy, aiohttp.ClientTimeout(total=timeout))
        for instance_id, tenant in sorted(registry.tenants.items()):
            if tenant.provider != "wapi":
                continue
            checks.append(await _check_token(client, url, instance_id, tenant))
    return checks


async def _check_token(client: GuardedClient, url: str, instance_id: str, tenant: Tenant) -> Check:
    name = f"token {instance_id}"
    if not tenant.wapi_token:
        return Check(
            name,
            False,
            "no W-API token configured",
            "set wapi_token_env or wapi_token_file in the tenant registry",
        )
    try:
        async with client.request(
            "POST",
            url,
            where="W-API",
            headers={"Authorization": f"Bearer {tenant.wapi_token.reveal()}"},
            params={"instanceId": instance_id},
            json={},
            same_origin_only=True,
        ) as response:
            status = response.status
    except BlockedUrl as exc:
        return Check(
            name,
            False,
            exc.message,
            "check MEDIAFLOW_WAPI_BASE_URL; the token is only ever sent to that origin",
        )
    except ProviderUnavailable as exc:
        return Check(
            name,
            False,
            f"W-API unreachable: {exc.message}",
            "check MEDIAFLOW_WAPI_BASE_URL and the network",
        )
    if status in (401, 403):
        return Check(
            name,
            False,
            f"W-API refused the token (HTTP {status})",
            f"renew the token of instance {instance_id} in the W-API panel "
            "and update the variable or file the registry names",
        )
    return Check(name, True, f"accepted (HTTP {status} to an empty request)")


def check_callbacks(settings: Settings) -> list[Check]:
    """Each declared callback loads and resolves to addresses the outgoing guard allows."""
    try:
        callbacks = Callbacks.load(
            settings.tenants_file, allow_private=settings.downloader.allow_private_addresses
        )
    except MediaflowError as exc:
        return [
            Check(
                "callbacks",
                False,
                exc.message,
                "fix the callback entries of MEDIAFLOW_TENANTS_FILE",
            )
        ]
    return [_check_callback(callback) for callback in callbacks.declared()]


def _check_callback(callback: Callback) -> Check:
    name = f"callback {callback.owner}"
    try:
        found = socket.getaddrinfo(callback.host, None, proto=socket.IPPROTO_TCP)
        callback.policy.check_addresses(callback.host, [str(a[4][0]) for a in found])
    except OSError as exc:
        return Check(
            name,
            False,
            f"{callback.host} does not resolve ({type(exc).__name__})",
            "check callback_url in the tenant registry",
        )
    except BlockedUrl as exc:
        return Check(
            name,
            False,
            exc.message,
            "if the platform receives callbacks on a private address, set "
            "callback_private = true for this client or instance",
        )
    return Check(name, True, f"{callback.host} resolves to allowed addresses")


def check_webhook(settings: Settings, timeout: float) -> Check:
    """The webhook receiver answers ``GET /healthz``."""
    url = f"http://{settings.webhook_host}:{settings.webhook_port}/healthz"
    try:
        status = http_status(url, timeout)
    except OSError as exc:
        return Check(
            "webhook",
            False,
            f"{url} unreachable: {type(exc).__name__}",
            "start it: `mediaflow serve webhooks` (or `mediaflow run all`)",
        )
    if status != 200:
        return Check("webhook", False, f"{url} answered HTTP {status}", "read the receiver's log")
    return Check("webhook", True, url)


def run_checks(settings: Settings, *, timeout: float = 5.0, s3: Any = None) -> list[Check]:
    """Run every check; return them in order."""
    checks = [check_broker(settings, timeout)]
    if checks[0].ok:
        checks += [check_topics(settings, timeout), check_replication(settings, timeout)]
    else:
        checks.append(Check("topics", False, "not checked: no broker", "fix the broker first"))
    checks.append(check_bucket(settings, s3 or s3_client(settings.s3)))
    checks.append(check_projection(settings))
    try:
        registry = TenantRegistry.load(settings.tenants_file)
        checks += check_tokens(settings, registry, timeout)
    except MediaflowError as exc:
        checks.append(Check("tenants", False, exc.message, "fix MEDIAFLOW_TENANTS_FILE"))
    checks += check_callbacks(settings)
    checks.append(check_webhook(settings, timeout))
    return checks


__all__ = [
    "Check",
    "check_broker",
    "check_bucket",
    "check_callbacks",
    "check_projection",
    "check_replication",
    "check_tokens",
    "check_topics",
    "check_webhook",
    "http_status",
    "run_checks",
]
