"""Secrets never leak: the whole pipeline run with known unique secrets, then every output searched.

Searched: every line each role wrote (stdout and stderr), the receiver's
``/metrics``, the API's answers (media with their last errors, listings,
stats, a refused request), the dead-letter topic's headers (values are the
original bytes, by design), every media event (their error messages reach
the API), and what ``mediaflow config show`` prints for the run's settings.
Searched for: webhook secrets, the W-API token, the API token, the S3 secret
key, a Kafka SASL password and OAuth client secret, the projection database's
password (the run keeps its projection in PostgreSQL, the password in the
URL's user-info), and every media key in base64 (standard and URL-safe, with
and without padding) and hex.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.process import settings_env
from simulator.demo import local_environment
from tests.chaos.audit import read_media_events
from tests.chaos.run import ChaosPipeline, Plan, Result, run_chaos
from tests.support.kafka import read_all
from tests.support.projection import drop_schema, store_url

pytestmark = pytest.mark.integration


def _get(url: str, token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.read().decode(errors="replace")


def key_forms(raw: bytes) -> set[str]:
    """Every text form a media key could leak in."""
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {std, std.rstrip("="), url, url.rstrip("="), raw.hex(), raw.hex().upper()}


@pytest.fixture(scope="module")
def leak_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Result, dict[str, str], list[str]]]:
    """A short run with unique secrets: it, the secrets, and the HTTP answers seen.

    The run's topics, bucket and database schema go once the module's tests have read them.
    """
    db_password = f"dbpw-{secrets.token_hex(12)}"
    oauth_secret = f"oauthsec-{secrets.token_hex(12)}"
    url, schema = store_url("postgres", tmp_path_factory.mktemp("secrets"))
    parts = urlsplit(url)  # the local server trusts loopback: it never asks for the password
    db_url = parts._replace(
        netloc=f"{parts.username}:{db_password}@{parts.hostname}:{parts.port}"
    ).geturl()
    unique = {
        "MEDIAFLOW_DEMO_WEBHOOK_SECRET": f"whsec-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_WAPI_TOKEN": f"wapitok-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_EVOLUTION_SECRET": f"evosec-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_ZAPI_SECRET": f"zapisec-{secrets.token_hex(12)}",
        "MEDIAFLOW_API_TOKEN": f"apitok-{secrets.token_hex(12)}",
        "MEDIAFLOW_KAFKA_PROP_SASL_PASSWORD": f"saslpw-{secrets.token_hex(12)}",
        # librdkafka keeps it for SASL/OAUTHBEARER and ignores it over PLAINTEXT.
        "MEDIAFLOW_KAFKA_PROP_SASL_OAUTHBEARER_CONFIG": f"clientSecret={oauth_secret}",
    }
    environ = local_environment({**os.environ, **unique})
    answers: list[str] = []

    def inspect(pipeline: ChaosPipeline) -> None:
        run = pipeline.run
        token = run.settings.api_token.reveal()
        answers.append(_get(f"{run.webhook_url}/metrics", None))
        listing = _get(f"{run.api_url}/media?limit=50", token)
        failed = _get(f"{run.api_url}/media?status=dead_lettered", token)
        answers.extend([listing, failed, _get(f"{run.api_url}/stats", token)])
        answers.append(_get(f"{run.api_url}/media", "wrong-token"))
        items = json.loads(failed).get("items", [])[:5] + json.loads(listing).get("items", [])[:5]
        for item in items:
            answers.append(_get(f"{run.api_url}/media/{item['media_id']}", token))
        answers.append(_config_show(run.settings, run.environ))

    plan = Plan(webhooks=80, rate=40.0, steps=(), error_rate=0.3, hang_rate=0.0, seed=31)
    result = run_chaos(
        plan, environ=environ, inspect=inspect, overrides={"projection_db_url": db_url}
    )
    found = {"projection database password": db_password, "OAuth client secret": oauth_secret}
    yield result, {**unique, **found}, answers
    result.run.discard()
    if schema:
        drop_schema(schema)


def _config_show(settings: Settings, environ: dict[str, str]) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mediaflow", "config", "show"],
        env=settings_env(settings, environ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return shown.stdout + shown.stderr


def _outputs(result: Result, answers: Iterable[str]) -> dict[str, str]:
    texts = {p.name: p.read_text(errors="replace") for p in result.run.directory.glob("*.log")}
    texts.update({f"http answer {i}": a for i, a in enumerate(answers)})
    settings: Settings = result.run.settings
    dlq = read_all(settings, load_layout(settings.kafka).dead_letters)
    texts["dead-letter headers"] = "\n".join(
        f"{k}={(v or b'').decode(errors='replace')}" for m in dlq for k, v in (m.headers() or [])
    )
    events, _undecodable = read_media_events(settings)
    texts["media events"] = "\n".join(map(repr, events))
    return texts


def test_the_run_exercised_failures_dead_letters_and_config_show(leak_run) -> None:  # type: ignore[no-untyped-def]
    result, _unique, answers = leak_run
    assert result.tally.stored > 0 and sum(result.tally.dead_by_reason.values()) > 0
    assert any("mediaflow_" in a for a in answers)
    assert any('"last_error_message": "' in a for a in answers)
    assert any('"projection_db_url": "postgresql://****@127.0.0.1' in a for a in answers)


def test_no_secret_appears_in_logs_metrics_dead_letters_or_api_answers(leak_run) -> None:  # type: ignore[no-untyped-def]
    result, unique, answers = leak_run
    wanted = dict(unique)
    wanted["S3 secret key"] = result.run.settings.s3.secret_key.reveal()
    texts = _outputs(result, answers)
    leaks = [(n, where) for n, value in wanted.items() for where, t in texts.items() if value in t]
    assert leaks == []


def test_no_media_key_appears_in_any_form(leak_run) -> None:  # type: ignore[no-untyped-def]
    result, _unique, answers = leak_run
    keys = {
        form
        for delivery in result.summary.accepted
        for media in delivery.webhook.media
        for form in key_forms(media.media_key)
    }
    assert keys
    texts = _outputs(result, answers)
    leaks = sorted({where for where, t in texts.items() for form in keys if form in t})
    assert leaks == []
