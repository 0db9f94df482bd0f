from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaflow.config import DownloaderSettings
from mediaflow.errors import BlockedUrl
from mediaflow.url_guard import UrlPolicy

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


# One address in each refused network, with a word of the reason the refusal must give.
REFUSED_ADDRESSES = [
    ("0.1.2.3", "this network"),
    ("10.1.2.3", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.0.0.8", "IETF protocol"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::7f00:1", "IPv4-compatible"),
    ("::9df0:13c", "IPv4-compatible"),
    ("::ffff:0:a9fe:a9fe", "IPv4-translated"),
    ("100::1", "discard"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:2::1", "benchmarking"),
    ("2001:20::1", "ORCHID"),
    ("2001:1ff::1", "IETF protocol"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "SRv6"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("feff::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "not global unicast"),
    ("1::1", "not global unicast"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES)
def test_every_internal_or_special_network_is_refused_with_its_reason(
    address: str, reason: str
) -> None:
    with pytest.raises(BlockedUrl) as refused:
        POLICY.check_addresses("mmg.whatsapp.net", [address])
    assert reason in refused.value.message


# Addresses that embed an IPv4 address are judged by it: the internal ones refused...
EMBEDDED_INTERNAL = [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4 of the cloud metadata address
    ("2002:0a00:0001::", "10.0.0.1"),
    ("2002:7f00:1::", "127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64, well-known prefix
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::c0a8:101", "192.168.1.1"),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),  # NAT64, local-use prefix, /96 layout
    ("64:ff9b:1:abcd::a00:1", "10.0.0.1"),
    ("64:ff9b:1:0:a:0:500:0", "10.0.0.5"),  # local-use prefix, /64 layout (RFC 6052)
]


@pytest.mark.parametrize(("address", "embedded"), EMBEDDED_INTERNAL)
def test_an_address_embedding_an_internal_ipv4_is_refused_and_names_it(
    address: str, embedded: str
) -> None:
    with pytest.raises(BlockedUrl) as refused:
        POLICY.check_addresses("mmg.whatsapp.net", [address])
    assert embedded in refused.value.message


# ...and the public ones allowed: an IPv6-only host behind DNS64/NAT64 reaches the CDN.
EMBEDDED_PUBLIC = [
    "::ffff:157.240.1.60",
    "2002:9df0:13c::1",
    "64:ff9b::9df0:13c",
    "64:ff9b::157.240.1.60",
    "64:ff9b:1::9df0:13c",
    "64:ff9b:1:abcd::9df0:13c",
]


@pytest.mark.parametrize("address", EMBEDDED_PUBLIC)
def test_an_address_embedding_a_public_ipv4_is_allowed(address: str) -> None:
    POLICY.check_addresses("mmg.whatsapp.net", [address])


def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(BlockedUrl):
        POLICY.check_addresses("mmg.whatsapp.net", ["157.240.1.60", "fec0::1"])


def test_a_scoped_address_is_judged_without_its_zone() -> None:
    with pytest.raises(BlockedUrl):
        POLICY.check_addresses("mmg.whatsapp.net", ["fe80::1%eth0"])


@given(st.ip_addresses())
def test_every_address_python_calls_internal_is_refused(address: IPv4Address | IPv6Address) -> None:
    """A cross-check of the table against the standard library's registry.

    The deliberate differences: an address embedding a public IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by it, and Python calls the mapped
    and NAT64 ones internal whatever they embed.
    """
    if address.is_global or _embeds_a_public_ipv4(address):
        return
    with pytest.raises(BlockedUrl):
        POLICY.check_addresses("mmg.whatsapp.net", [str(address)])


def _embeds_a_public_ipv4(address: IPv4Address | IPv6Address) -> bool:
    if not isinstance(address, IPv6Address):
        return False
    embedding = ("::ffff:0:0/96", "2002::/16", "64:ff9b::/96", "64:ff9b:1::/48")
    if not any(address in ip_network(n) for n in embedding):
        return False
    last = IPv4Address(address.packed[12:])
    sixtofour = address.sixtofour
    return (sixtofour or last).is_global


def test_the_default_allowlist_lets_z_api_media_links_through() -> None:
    """Z-API webhooks carry plain links on its storage host (tests/fixtures/payloads/zapi_*)."""
    policy = UrlPolicy.from_settings(DownloaderSettings())
    url = "https://storage.z-api.io/instances/3C8A1F2B/3EB0CD34EF56AB78CD90.jpeg"
    assert policy.check_url(url) == "storage.z-api.io"
    with pytest.raises(BlockedUrl):
        policy.check_url("https://z-api.io.evil.example/x.jpeg")
