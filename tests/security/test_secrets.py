"""Secrets never leak: the whole pipeline run with known unique secrets, then every output searched.

Searched: every line each role wrote (stdout and stderr), the receiver's
``/metrics``, the API's answers (media, listing, stats, a refused request),
and the dead-letter topic's headers (values are the original bytes, by design).
Searched for: webhook secrets, the W-API token, the API token, the S3 secret
key, and every media key in base64 (standard and URL-safe, with and without
padding) and hex.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator

import pytest

from mediaflow.config import Settings
from mediaflow.kafka.topics import load_layout
from simulator.demo import local_environment
from tests.chaos.run import ChaosPipeline, Plan, Result, run_chaos
from tests.support.kafka import read_all

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
def leak_run() -> Iterator[tuple[Result, dict[str, str], list[str]]]:
    """A short run with unique secrets: it, the secrets, and the HTTP answers seen.

    The run's topics and bucket go once the module's tests have read them.
    """
    unique = {
        "MEDIAFLOW_DEMO_WEBHOOK_SECRET": f"whsec-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_WAPI_TOKEN": f"wapitok-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_EVOLUTION_SECRET": f"evosec-{secrets.token_hex(12)}",
        "MEDIAFLOW_DEMO_ZAPI_SECRET": f"zapisec-{secrets.token_hex(12)}",
        "MEDIAFLOW_API_TOKEN": f"apitok-{secrets.token_hex(12)}",
    }
    environ = local_environment({**os.environ, **unique})
    answers: list[str] = []

    def inspect(pipeline: ChaosPipeline) -> None:
        run = pipeline.run
        token = run.settings.api_token.reveal()
        answers.append(_get(f"{run.webhook_url}/metrics", None))
        listing = _get(f"{run.api_url}/media?limit=50", token)
        answers.extend([listing, _get(f"{run.api_url}/stats", token)])
        answers.append(_get(f"{run.api_url}/media", "wrong-token"))
        for item in json.loads(listing).get("items", [])[:10]:
            answers.append(_get(f"{run.api_url}/media/{item['media_id']}", token))

    plan = Plan(webhooks=80, rate=40.0, steps=(), error_rate=0.3, hang_rate=0.0, seed=31)
    result = run_chaos(plan, environ=environ, inspect=inspect)
    yield result, unique, answers
    result.run.discard()


def _outputs(result: Result, answers: Iterable[str]) -> dict[str, str]:
    texts = {p.name: p.read_text(errors="replace") for p in result.run.directory.glob("*.log")}
    texts.update({f"http answer {i}": a for i, a in enumerate(answers)})
    settings: Settings = result.run.settings
    dlq = read_all(settings, load_layout(settings.kafka).dead_letters)
    texts["dead-letter headers"] = "\n".join(
        f"{k}={(v or b'').decode(errors='replace')}" for m in dlq for k, v in (m.headers() or [])
    )
    return texts


def test_the_run_exercised_failures_and_dead_letters(leak_run) -> None:  # type: ignore[no-untyped-def]
    result, _unique, answers = leak_run
    assert result.tally.stored > 0 and sum(result.tally.dead_by_reason.values()) > 0
    assert any("mediaflow_" in a for a in answers)


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
