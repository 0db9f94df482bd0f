import pytest

from mediaflow.config import DownloaderSettings
from mediaflow.errors import BlockedUrl
from processors.downloader.safety import UrlPolicy

POLICY = UrlPolicy(("api.w-api.app", "*.whatsapp.net"))


def test_cdn_subdomains_match_the_wildcard() -> None:
    assert POLICY.check_url("https://mmg.whatsapp.net/v/t62/x.enc?oh=1") == "mmg.whatsapp.net"


def test_wildcard_does_not_match_the_bare_domain_or_lookalikes() -> None:
    for url in (
        "https://whatsapp.net/x",
        "https://evilwhatsapp.net/x",
        "https://mmg.whatsapp.net.evil.com/",
    ):
        with pytest.raises(BlockedUrl):
            POLICY.check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://api.w-api.app/x", "gopher://x"])
def test_only_http_and_https_are_allowed(url: str) -> None:
    with pytest.raises(BlockedUrl):
        POLICY.check_url(url)


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(BlockedUrl):
        POLICY.check_url("https://user:pw@api.w-api.app/x")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "224.0.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    with pytest.raises(BlockedUrl):
        POLICY.check_addresses("mmg.whatsapp.net", [address])


def test_public_addresses_pass() -> None:
    POLICY.check_addresses("mmg.whatsapp.net", ["157.240.1.60", "2a03:2880:f20c::1"])


def test_private_addresses_pass_when_the_settings_allow_them() -> None:
    UrlPolicy(("x",), allow_private=True).check_addresses("x", ["127.0.0.1"])


def test_literal_internal_ip_in_an_allowed_host_is_refused() -> None:
    with pytest.raises(BlockedUrl):
        UrlPolicy(("169.254.169.254",)).check_url("http://169.254.169.254/latest/meta-data")


def test_settings_policy_includes_the_configured_wapi_and_cdn_hosts() -> None:
    policy = UrlPolicy.from_settings(
        DownloaderSettings(
            wapi_base_url="http://127.0.0.1:8090", cdn_base_url="http://localhost:8091"
        )
    )
    assert policy.host_allowed("127.0.0.1") and policy.host_allowed("localhost")


def test_redirects_are_checked_relative_to_the_current_url() -> None:
    assert (
        POLICY.redirect_target("https://mmg.whatsapp.net/a", "/b") == "https://mmg.whatsapp.net/b"
    )
    with pytest.raises(BlockedUrl):
        POLICY.redirect_target("https://mmg.whatsapp.net/a", "http://169.254.169.254/")
