"""Redirect hops: credentials and bodies stay in their origin; methods change as browsers do."""

from __future__ import annotations

import pytest

from mediaflow.errors import BlockedUrl
from mediaflow.processors.downloader.client import Hop, next_hop, origin_of

API = "https://api.w-api.app/v1/message/download-media"
SECRETS = {"Authorization": "Bearer tok-123456", "Cookie": "s=1", "Proxy-Authorization": "x"}


def post() -> Hop:
    return Hop("POST", API, {**SECRETS, "Origin": "https://web.whatsapp.com"}, {"mediaKey": "K"})


def get(url: str = "https://files.w-api.app/f/1") -> Hop:
    return Hop("GET", url, {**SECRETS, "Origin": "https://web.whatsapp.com"})


def test_origin_is_scheme_host_and_port_with_the_default_port_filled_in() -> None:
    assert origin_of("HTTPS://Api.W-API.app./x") == origin_of("https://api.w-api.app:443/y")
    assert origin_of("http://api.w-api.app/x") != origin_of("https://api.w-api.app/x")
    assert origin_of("https://api.w-api.app:8443/x") != origin_of("https://api.w-api.app/x")


@pytest.mark.parametrize("status", [307, 308])
def test_a_same_origin_307_or_308_repeats_the_request_as_it_was(status: int) -> None:
    hop = next_hop(post(), status, API + "?v=2", same_origin_only=True, where="W-API")
    assert hop == Hop("POST", API + "?v=2", post().headers, {"mediaKey": "K"})


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_post_redirected_by_301_302_or_303_continues_as_a_get_without_body(status: int) -> None:
    hop = next_hop(post(), status, API + "/2", same_origin_only=True, where="W-API")
    assert (hop.method, hop.json, hop.headers) == ("GET", None, post().headers)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_same_origin_only_request_is_refused_any_redirect_to_another_origin(status: int) -> None:
    with pytest.raises(BlockedUrl) as refused:
        next_hop(post(), status, "https://trap.example/x", same_origin_only=True, where="W-API")
    assert "another origin (trap.example)" in refused.value.message
    assert "tok-123456" not in refused.value.message


def test_a_get_to_another_origin_leaves_its_credentials_behind() -> None:
    hop = next_hop(get(), 302, "https://cdn.example/f/1", same_origin_only=False, where="link")
    assert hop == Hop("GET", "https://cdn.example/f/1", {"Origin": "https://web.whatsapp.com"})


def test_a_get_within_its_origin_keeps_its_headers() -> None:
    hop = next_hop(get(), 302, "https://files.w-api.app/f/2", same_origin_only=False, where="x")
    assert hop.headers == get().headers


def test_a_body_is_never_repeated_to_another_origin() -> None:
    with pytest.raises(BlockedUrl):
        next_hop(post(), 307, "https://trap.example/x", same_origin_only=False, where="W-API")
