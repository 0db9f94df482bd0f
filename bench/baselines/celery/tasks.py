"""The Celery task: fetch one media (W-API, else the CDN), decrypt it, upload it with boto3.

Written the way a Django team would: ``requests`` with timeouts, a plain
``put_object``, and Celery's ``autoretry_for`` for the failures that pass. It
reuses mediaflow's pure pieces so the two systems store the same bytes under
the same keys: the WhatsApp decryption (:class:`MediaDecryptor`, HKDF + AES-CBC
+ HMAC) and the key layout (:func:`object_key`). Idempotent, as Celery asks of
late-acknowledged tasks: a media whose key prefix already holds an object is
not fetched again.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from bench.baselines.celery.app import app
from bench.baselines.celery.media import from_message
from mediaflow.config import Settings
from mediaflow.events import MediaInfo, MediaSource
from mediaflow.processors.downloader.keys import content_disposition, key_prefix, object_key
from mediaflow.storage.s3 import s3_client
from mediaflow.stored_content import content_type
from mediaflow.tenants import TenantRegistry
from mediaflow.whatsapp.keys import decode_b64_field
from mediaflow.whatsapp.media_crypto import MediaDecryptor

MAX_RETRIES = int(os.environ.get("BENCH_CELERY_MAX_RETRIES", "9"))
BACKOFF_S = int(os.environ.get("BENCH_CELERY_BACKOFF_S", "2"))
BACKOFF_MAX_S = int(os.environ.get("BENCH_CELERY_BACKOFF_MAX_S", "8"))
TIMEOUT_S = float(os.environ.get("BENCH_CELERY_HTTP_TIMEOUT_S", "2"))
GONE = frozenset({403, 404, 410})


class Unavailable(Exception):
    """A provider or the CDN answered 5xx or 429: worth another attempt."""


class Gone(Exception):
    """The CDN says the media is gone (403/404/410): no attempt will fetch it."""


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


@functools.cache
def _tokens() -> dict[str, str]:
    registry = TenantRegistry.load(_settings().tenants_file)
    return {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}


@functools.cache
def _http() -> requests.Session:
    return requests.Session()


@functools.cache
def _s3() -> Any:
    return s3_client(_settings().s3)


def _get(url: str, **kwargs: Any) -> bytes:
    response = _http().get(url, timeout=(TIMEOUT_S, TIMEOUT_S), **kwargs)
    if response.status_code in GONE:
        raise Gone(f"{response.status_code} from the file host")
    if response.status_code >= 500 or response.status_code == 429:
        raise Unavailable(f"{response.status_code} from the file host")
    response.raise_for_status()
    return response.content


def _via_wapi(info: MediaInfo, source: MediaSource, token: str) -> bytes:
    base = _settings().downloader.wapi_base_url.rstrip("/")
    response = _http().post(
        f"{base}/v1/message/download-media",
        params={"instanceId": info.instance_id},
        headers={"Authorization": f"Bearer {token}"},
        json={
            "mediaKey": source.media_key,
            "directPath": source.direct_path,
            "type": info.media_type.value,
            "mimetype": info.mimetype,
        },
        timeout=(TIMEOUT_S, TIMEOUT_S),
        allow_redirects=False,
    )
    if response.status_code != 200:
        raise Unavailable(f"W-API answered {response.status_code}")
    answer = response.json()
    if not isinstance(answer, dict) or answer.get("error") or not answer.get("fileLink"):
        raise Unavailable("W-API gave no file link")
    return _get(str(answer["fileLink"]))


def _via_cdn(info: MediaInfo, source: MediaSource) -> bytes:
    base = _settings().downloader.cdn_base_url.rstrip("/")
    url = f"{base}/{source.direct_path.lstrip('/')}" if source.direct_path else source.url or ""
    encrypted = _get(url, headers={"Origin": "https://web.whatsapp.com"})
    decryptor = MediaDecryptor(
        decode_b64_field(source.media_key or "", "mediaKey", 32),
        info.media_type,
        info.media_variant,
        file_enc_sha256=(
            decode_b64_field(source.file_enc_sha256, "fileEncSha256", 32)
            if source.file_enc_sha256
            else None
        ),
        file_sha256=decode_b64_field(info.file_sha256, "fileSha256", 32)
        if info.file_sha256
        else None,
        file_length=info.declared_length,
    )
    return decryptor.update(encrypted) + decryptor.finalize()


def fetch(info: MediaInfo, source: MediaSource) -> bytes:
    """The media's plaintext: W-API first when the instance has a token, then the CDN."""
    if not source.media_key:
        return _get(source.url or "")
    token = _tokens().get(info.instance_id)
    if token:
        try:
            return _via_wapi(info, source, token)
        except (Unavailable, Gone, requests.RequestException, ValueError):
            pass  # the CDN serves the same media: try it before giving the attempt up
    return _via_cdn(info, source)


@app.task(
    name="store_media",
    autoretry_for=(Unavailable, requests.RequestException, BotoCoreError, ClientError),
    max_retries=MAX_RETRIES,
    retry_backoff=BACKOFF_S,
    retry_backoff_max=BACKOFF_MAX_S,
    retry_jitter=True,
)
def store_media(message: dict[str, Any]) -> None:
    """Store one media unless its key prefix already holds it."""
    media_id, info, source = from_message(message)
    bucket = _settings().s3.bucket
    prefix = key_prefix(info, media_id)
    if _s3().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
        return
    plaintext = fetch(info, source)
    key = object_key(info, media_id, hashlib.sha256(plaintext).hexdigest())
    _s3().put_object(
        Bucket=bucket,
        Key=key,
        Body=plaintext,
        ContentType=content_type(info.media_type, info.mimetype),
        ContentDisposition=content_disposition(info),
    )


__all__ = ["Gone", "Unavailable", "fetch", "store_media"]
