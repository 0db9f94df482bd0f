"""``mediaflow diagnose`` failing with the right message: missing bucket, refused token."""

import asyncio
import dataclasses

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mediaflow.config import Secret
from mediaflow.ops import diagnose
from mediaflow.storage.s3 import s3_client
from mediaflow.tenants import TenantRegistry

pytestmark = pytest.mark.integration


def test_a_missing_bucket_fails_with_the_command_that_creates_it(settings):
    missing = dataclasses.replace(
        settings, s3=dataclasses.replace(settings.s3, bucket="t-nope-404")
    )
    checks = {c.name: c for c in diagnose.run_checks(missing, timeout=2)}
    assert not checks["bucket"].ok
    assert "does not exist" in checks["bucket"].detail
    assert checks["bucket"].hint == "run `mediaflow storage init`"
    assert checks["broker"].ok and checks["topics"].ok
    assert checks["replication"].ok and "every partition in sync" in checks["replication"].detail


def test_an_existing_bucket_passes_the_probe_write_read_delete(settings):
    assert diagnose.check_bucket(settings, s3_client(settings.s3)).ok
    listed = s3_client(settings.s3).list_objects_v2(Bucket=settings.s3.bucket)
    assert listed.get("KeyCount", 0) == 0  # the probe was deleted


def fake_wapi() -> web.Application:
    async def download_media(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer good-token-123":
            return web.json_response({"error": True, "message": "unauthorized"}, status=401)
        return web.json_response({"error": True, "message": "messageId required"}, status=400)

    app = web.Application()
    app.router.add_post("/v1/message/download-media", download_media)
    return app


async def test_a_refused_token_fails_and_an_accepted_one_passes(make_settings, tmp_path):
    (tmp_path / "bad").write_text("bad-token-456")
    (tmp_path / "good").write_text("good-token-123")
    (tmp_path / "tenants.toml").write_text(
        f'[tenants."INST-BAD"]\nclient_id = "1"\nwapi_token_file = "{tmp_path / "bad"}"\n'
        f'[tenants."INST-GOOD"]\nclient_id = "2"\nwapi_token_file = "{tmp_path / "good"}"\n'
    )
    server = TestServer(fake_wapi(), host="127.0.0.1")
    await server.start_server()
    try:
        settings = make_settings(create=False, wapi_base_url=str(server.make_url("")).rstrip("/"))
        registry = TenantRegistry.load(tmp_path / "tenants.toml", environ={})
        checks = await asyncio.to_thread(diagnose.check_tokens, settings, registry, 5)
    finally:
        await server.close()
    bad, good = checks
    assert (bad.name, bad.ok) == ("token INST-BAD", False)
    assert "refused the token (HTTP 401)" in bad.detail and "INST-BAD" in bad.hint
    assert "bad-token-456" not in bad.line()
    assert good.ok


def test_a_wrong_s3_secret_fails_the_bucket_check_with_the_variables_to_fix(settings):
    wrong = dataclasses.replace(
        settings, s3=dataclasses.replace(settings.s3, secret_key=Secret("not-the-secret"))
    )
    check = diagnose.check_bucket(wrong, s3_client(wrong.s3))
    assert not check.ok
    assert "MEDIAFLOW_S3_SECRET_KEY" in check.hint and "not-the-secret" not in check.line()
