"""Where a webhook may go: https to public addresses only, however an address is written;
loopback in development; private hosts an operator names. No I/O."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import HttpUrl, TypeAdapter, ValidationError

from services.partners.domain.webhook_targets import (
    AddressKind,
    NotAnAddress,
    TargetRules,
    host_and_port,
    ip_literal,
    kind_of,
    normal_host,
)
from services.partners.domain.webhooks import DeliveryStatus, refused_attempt
from services.partners.service_layer.webhooks import target_rules
from services.partners.settings import PartnersSettings

STRICT = TargetRules()
DEVELOPMENT = TargetRules.of(allow_http=True, allow_loopback=True, private_hosts=[])
ON_PREMISES = TargetRules.of(private_hosts=["Partner.Internal.", "10.9.8.7", "[FD00::0:7]"])

ADDRESSES = [
    # IPv4
    ("8.8.8.8", AddressKind.PUBLIC),
    ("93.184.215.14", AddressKind.PUBLIC),
    ("127.0.0.1", AddressKind.LOOPBACK),
    ("127.255.255.254", AddressKind.LOOPBACK),
    ("169.254.169.254", AddressKind.LINK_LOCAL),  # the cloud metadata service
    ("10.0.0.5", AddressKind.PRIVATE),
    ("172.16.0.1", AddressKind.PRIVATE),
    ("172.31.255.255", AddressKind.PRIVATE),
    ("192.168.1.1", AddressKind.PRIVATE),
    ("100.64.0.1", AddressKind.SHARED),
    ("100.127.255.254", AddressKind.SHARED),
    ("224.0.0.1", AddressKind.MULTICAST),  # is_global says True: checked apart
    ("239.255.255.250", AddressKind.MULTICAST),
    ("0.0.0.0", AddressKind.UNSPECIFIED),
    ("0.1.2.3", AddressKind.RESERVED),  # "this network"
    ("192.0.2.1", AddressKind.RESERVED),  # documentation
    ("198.18.0.1", AddressKind.RESERVED),  # benchmarking
    ("240.0.0.1", AddressKind.RESERVED),
    ("255.255.255.255", AddressKind.RESERVED),
    # IPv6
    ("2606:4700:4700::1111", AddressKind.PUBLIC),
    ("::1", AddressKind.LOOPBACK),
    ("::", AddressKind.UNSPECIFIED),
    ("fe80::1", AddressKind.LINK_LOCAL),
    ("fc00::1", AddressKind.PRIVATE),
    ("fd12:3456:789a::1", AddressKind.PRIVATE),
    ("fec0::1", AddressKind.PRIVATE),  # deprecated site-local; is_global says True
    ("ff02::1", AddressKind.MULTICAST),  # is_global says True: checked apart
    ("2001:db8::1", AddressKind.RESERVED),
    # IPv6 carrying IPv4: what the IPv4 address is
    ("::ffff:127.0.0.1", AddressKind.LOOPBACK),
    ("::ffff:7f00:1", AddressKind.LOOPBACK),
    ("::ffff:10.0.0.1", AddressKind.PRIVATE),
    ("::ffff:169.254.169.254", AddressKind.LINK_LOCAL),
    ("::ffff:0.0.0.0", AddressKind.UNSPECIFIED),
    ("::ffff:100.64.0.1", AddressKind.SHARED),
    ("::ffff:8.8.8.8", AddressKind.PUBLIC),
    ("::127.0.0.1", AddressKind.LOOPBACK),  # IPv4-compatible (deprecated)
    ("::8.8.8.8", AddressKind.RESERVED),
    ("64:ff9b::10.0.0.1", AddressKind.PRIVATE),  # NAT64
    ("64:ff9b::8.8.8.8", AddressKind.PUBLIC),
    ("2002:7f00:1::1", AddressKind.LOOPBACK),  # 6to4
    ("2002:a9fe:a9fe::", AddressKind.LINK_LOCAL),
    ("2002:808:808::1", AddressKind.PUBLIC),
]


@pytest.mark.parametrize(("address", "kind"), ADDRESSES)
def test_every_kind_of_address_is_told_apart(address: str, kind: AddressKind) -> None:
    assert kind_of(ipaddress.ip_address(address)) is kind


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # one decimal number
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7F.0.0.0x1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("10.1", "10.0.0.1"),
        ("167772161", "10.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[FE80::1%eth0]", "fe80::1"),  # with a zone
    ],
)
def test_an_address_is_read_in_every_form_a_resolver_accepts(host: str, address: str) -> None:
    assert str(ip_literal(host)) == address


@pytest.mark.parametrize("host", ["partner.example", "0x1g", "1.2.example", "xn--80ak6aa92e"])
def test_a_name_is_not_an_address(host: str) -> None:
    assert ip_literal(host) is None


@pytest.mark.parametrize("host", ["256.1", "1.2.3.4.5", "foo.123", "a0x7f.1", "08.0.0.1", "[::g]"])
def test_a_number_that_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(NotAnAddress):
        ip_literal(host)


def test_the_api_reads_numeric_hosts_as_the_domain_does() -> None:
    """pydantic's URL parser (WHATWG) rewrites them first; both land on the same address."""
    for host in ("2130706433", "0x7f.1", "127.1", "0177.0.0.1"):
        parsed = TypeAdapter(HttpUrl).validate_python(f"https://{host}/hook")
        assert parsed.host == "127.0.0.1" == str(ip_literal(host))


REFUSED_AT_REGISTRATION = [
    ("http://partner.example/hook", "must be https"),
    ("ftp://partner.example/hook", "must be https"),
    ("https:///hook", "must name a host"),
    ("https://partner.example:99999/", "is not a valid URL"),
    ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("https://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),
    ("https://2130706433/", "127.0.0.1 is a loopback address"),
    ("https://0x7f.1/", "127.0.0.1 is a loopback address"),
    ("https://127.1/", "127.0.0.1 is a loopback address"),
    ("https://localhost/hook", "localhost is the loopback name"),
    ("https://LOCALHOST./hook", "localhost is the loopback name"),
    ("https://api.localhost/hook", "api.localhost is the loopback name"),
    ("https://[::1]/hook", "::1 is a loopback address"),
    ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is a loopback address"),
    ("https://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("https://0/", "0.0.0.0 is an unspecified address"),
    ("https://[::]/", ":: is an unspecified address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://[fe80::1]/", "fe80::1 is a link-local address"),
    ("https://10.0.0.5/", "10.0.0.5 is a private address"),
    ("https://172.16.3.4/", "172.16.3.4 is a private address"),
    ("https://192.168.0.10/", "192.168.0.10 is a private address"),
    ("https://[fd00::1]/", "fd00::1 is a private address"),
    ("https://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("https://224.0.0.251/", "224.0.0.251 is a multicast address"),
    ("https://[ff02::1]/", "ff02::1 is a multicast address"),
    ("https://192.0.2.10/", "192.0.2.10 is a reserved address"),
    ("https://256.1/", "256.1 is not a valid address"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_AT_REGISTRATION)
def test_registration_refuses_what_could_reach_inward(url: str, reason: str) -> None:
    refusal = STRICT.url_refusal(url)
    assert refusal is not None and refusal.endswith(reason), refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://partner.example/hook",
        "https://partner.example:8443/hook?x=1",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://[::ffff:8.8.8.8]/hook",
        "https://partner.internal/hook",  # a name: checked when resolved, at delivery
    ],
)
def test_https_to_a_public_address_or_a_name_is_accepted(url: str) -> None:
    assert STRICT.url_refusal(url) is None


def test_development_allows_http_and_loopback_but_nothing_else_inward() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "https://localhost/hook",
        "http://[::1]:9000/",
        "http://2130706433/",
    ):
        assert DEVELOPMENT.url_refusal(url) is None, url
    for url, kind in (
        ("http://10.0.0.5/", "private"),
        ("http://169.254.169.254/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
    ):
        assert (
            DEVELOPMENT.url_refusal(url)
            == f"must be a public address: {url[7:-1]} is "
            + ("an " if kind[0] in "aeiou" else "a ")
            + f"{kind} address"
        )
    assert DEVELOPMENT.url_refusal("ftp://127.0.0.1/") == "must be https"


def test_named_private_hosts_may_be_private_or_shared_but_never_loopback_or_link_local() -> None:
    assert ON_PREMISES.url_refusal("https://10.9.8.7/hook") is None
    assert ON_PREMISES.url_refusal("https://[fd00::7]/hook") is None
    assert ON_PREMISES.url_refusal("http://10.9.8.7/hook") == "must be https"
    assert ON_PREMISES.url_refusal("https://10.9.8.8/hook") is not None  # not named
    name = "partner.internal"
    for address in ("10.1.2.3", "192.168.7.7", "100.64.9.9", "fd00::9"):
        assert ON_PREMISES.resolved_refusal(name, [ipaddress.ip_address(address)]) is None
        assert (
            ON_PREMISES.resolved_refusal("PARTNER.internal.", [ipaddress.ip_address(address)])
            is None
        )
        assert STRICT.resolved_refusal(name, [ipaddress.ip_address(address)]) is not None
        assert ON_PREMISES.resolved_refusal("other.internal", [ipaddress.ip_address(address)])
    for address in ("127.0.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "::1"):
        assert ON_PREMISES.resolved_refusal(name, [ipaddress.ip_address(address)]) is not None


def test_a_name_resolving_to_any_inward_address_is_refused() -> None:
    public, private = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.5")
    assert STRICT.resolved_refusal("partner.example", [public]) is None
    assert STRICT.resolved_refusal("partner.example", [public, private]) == (
        "must be a public address: partner.example resolves to 10.0.0.5, a private address"
    )
    assert STRICT.resolved_refusal("rebind.example", [ipaddress.ip_address("::ffff:127.0.0.1")])


def test_hosts_and_ports() -> None:
    assert host_and_port("https://Partner.Example/hook") == ("partner.example", 443)
    assert host_and_port("http://partner.example/hook") == ("partner.example", 80)
    assert host_and_port("https://[::1]:8443/") == ("::1", 8443)
    assert normal_host("[FD00::0:7]") == "fd00::7"
    assert normal_host("Partner.Internal.") == "partner.internal"


def test_a_refused_destination_fails_at_once_with_its_reason() -> None:
    result = refused_attempt(
        0, "must be a public address: x resolves to 10.0.0.5, a private address"
    )
    assert result.status is DeliveryStatus.FAILED and result.attempts == 1
    assert result.next_attempt_at is None and result.last_status_code is None
    assert result.last_error == (
        "refused, not sent: must be a public address: x resolves to 10.0.0.5, a private address"
    )


# -- the settings -------------------------------------------------------------------------

DB = "postgresql+asyncpg://upstream:pw@db/partners"


def test_the_development_escape_hatch_is_refused_outside_development() -> None:
    with pytest.raises(
        ValidationError, match="UPSTREAM_ALLOW_HTTP_WEBHOOKS is refused in production"
    ):
        PartnersSettings(
            database_url=DB,
            environment="production",
            jwt_signing_key="a-real-secret-from-the-vault",
            tombstone_secret="a-real-tombstone-secret",
            allow_http_webhooks=True,
        )
    development = PartnersSettings(database_url=DB, allow_http_webhooks=True)
    assert target_rules(development) == DEVELOPMENT


def test_operators_name_private_hosts_as_a_list_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_WEBHOOK_ALLOWED_PRIVATE_HOSTS", "partner.internal, 10.9.8.7")
    assert PartnersSettings(database_url=DB).webhook_allowed_private_hosts == [
        "partner.internal",
        "10.9.8.7",
    ]
    monkeypatch.setenv("UPSTREAM_WEBHOOK_ALLOWED_PRIVATE_HOSTS", '["partner.internal"]')
    settings = PartnersSettings(database_url=DB)
    assert settings.webhook_allowed_private_hosts == ["partner.internal"]
    assert target_rules(settings).private_hosts == {"partner.internal"}
    assert not target_rules(settings).allow_http and not target_rules(settings).allow_loopback
    monkeypatch.delenv("UPSTREAM_WEBHOOK_ALLOWED_PRIVATE_HOSTS")
    assert PartnersSettings(database_url=DB).webhook_allowed_private_hosts == []
