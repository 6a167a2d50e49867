"""Where a webhook may be sent: https, to public addresses only, so that a partner's URL can
never make this service reach inward (server-side request forgery). Pure rules over plain
data; resolving a name is an adapter (``adapters/webhook_sender.py``).

The rule is applied twice. At registration, to what the URL says: the scheme, an address
written as the host (in any form a resolver accepts: ``127.1``, ``0x7f.1``, ``2130706433``,
``[::ffff:127.0.0.1]``) and the ``localhost`` names. At delivery, to every address the host
name resolves to, just before connecting to one of them, so a name that later resolves
inward is refused too.

Refused: loopback, link-local, private (RFC 1918, fc00::/7, fec0::/10), shared (100.64/10),
multicast, unspecified (0.0.0.0, ::) and every other address that is not publicly routable
(documentation, benchmarking, reserved), also when carried inside an IPv6 address
(IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo). Two exceptions: hosts an operator names
(on-premises partners) may be private or shared, and in development (``allow_http_webhooks``)
loopback is allowed for a receiver on the same machine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressKind(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    PRIVATE = "private"
    SHARED = "shared (carrier-grade NAT)"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"  # not publicly routable for any other reason


_PRIVATE = [
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
]
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _kind_of_one(address: IPAddress) -> AddressKind:
    if address.is_unspecified:
        return AddressKind.UNSPECIFIED
    if address.is_loopback:
        return AddressKind.LOOPBACK
    if address.is_link_local:
        return AddressKind.LINK_LOCAL
    if address.is_multicast:
        return AddressKind.MULTICAST
    if any(address in network for network in _PRIVATE if network.version == address.version):
        return AddressKind.PRIVATE
    if address.version == 4 and address in _SHARED:
        return AddressKind.SHARED
    if address.is_reserved or address.is_private or not address.is_global:
        return AddressKind.RESERVED
    return AddressKind.PUBLIC


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and may be delivered to: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``),
    6to4 (``2002:AABB:CCDD::``) or Teredo (the client's address)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def kind_of(address: IPAddress) -> AddressKind:
    """What an address is. An IPv6 address carrying an IPv4 one that is not public is what
    that one is; one carrying a public IPv4 address is public only if a connection to it
    reaches that address (IPv4-mapped, NAT64)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        inner_kind = _kind_of_one(inner)
        if inner_kind is not AddressKind.PUBLIC:
            return inner_kind
        if isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped is not None or address in _NAT64
        ):
            return AddressKind.PUBLIC
    return _kind_of_one(address)


# -- reading a host ------------------------------------------------------------------------


def _ipv4_part(part: str) -> int:
    """One part of an IPv4 address as resolvers (``inet_aton``) and browsers (WHATWG) read
    it: decimal, ``0x`` hexadecimal or ``0``-prefixed octal."""
    lowered = part.lower()
    if lowered.startswith("0x"):
        digits, base = lowered[2:] or "0", 16
    elif len(lowered) > 1 and lowered.startswith("0"):
        digits, base = lowered[1:], 8
    else:
        digits, base = lowered, 10
    if not digits.isascii() or not digits.isalnum():
        raise ValueError(part)
    return int(digits, base)


def _looks_numeric(label: str) -> bool:
    lowered = label.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return lowered.isascii() and lowered.isdigit()


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address:
    """``127.1``, ``0x7f.1``, ``2130706433``, ``0177.0.0.1``: one to four parts, the last
    filling the bytes the others leave."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        raise ValueError(host)
    numbers = [_ipv4_part(part) for part in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(host)
    value = 0
    for n in leading:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (5 - len(numbers)) + last)


class NotAnAddress(ValueError):
    """A host that looks like a number but is not an address any resolver would accept."""


def normal_host(host: str) -> str:
    """Lower case, without IPv6 brackets or a trailing dot; an address in its usual form."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    try:
        literal = ip_literal(host)
    except NotAnAddress:
        return host
    return str(literal) if literal is not None else host


def ip_literal(host: str) -> IPAddress | None:
    """The address a host is written as, or None when it is a name (to be resolved)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise NotAnAddress(f"{host} is not a valid address") from None
    host = host.rstrip(".")
    if not host or not _looks_numeric(host.rsplit(".", 1)[-1]):
        return None  # a name: its last label is not a number
    try:
        return _legacy_ipv4(host)
    except ValueError:
        raise NotAnAddress(f"{host} is not a valid address") from None


def host_and_port(url: str) -> tuple[str, int]:
    """The host to resolve and the port to connect to (the scheme's, if none is given)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def is_localhost_name(host: str) -> bool:
    """``localhost`` and every name under it (RFC 6761): always the machine itself."""
    name = normal_host(host)
    return name == "localhost" or name.endswith(".localhost")


# -- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRules:
    """What the settings allow beyond https to public addresses."""

    allow_http: bool = False  # development only
    allow_loopback: bool = False  # development only: a receiver on the same machine
    private_hosts: frozenset[str] = frozenset()  # named by an operator: may be private

    @classmethod
    def of(
        cls, *, allow_http: bool = False, allow_loopback: bool = False, private_hosts: Iterable[str]
    ) -> TargetRules:
        return cls(allow_http, allow_loopback, frozenset(normal_host(h) for h in private_hosts))

    def allows(self, host: str, kind: AddressKind) -> bool:
        if kind is AddressKind.PUBLIC:
            return True
        if kind is AddressKind.LOOPBACK:
            return self.allow_loopback
        if kind in (AddressKind.PRIVATE, AddressKind.SHARED):
            return normal_host(host) in self.private_hosts
        return False  # link-local, multicast, unspecified, reserved: never

    def address_refusal(self, host: str, address: IPAddress) -> str | None:
        kind = kind_of(address)
        if self.allows(host, kind):
            return None
        written = normal_host(host)
        shown = f"{address} is" if written == str(address) else f"{written} resolves to {address},"
        article = "an" if kind.value[0] in "aeiou" else "a"
        return f"must be a public address: {shown} {article} {kind.value} address"

    def url_refusal(self, url: str) -> str | None:
        """Why a URL may not be registered (or sent to), or None. Names other than
        ``localhost`` are checked when they are resolved, at delivery."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - refuses a port out of range
        except ValueError:
            return "is not a valid URL"
        if parts.scheme != "https" and not (parts.scheme == "http" and self.allow_http):
            return "must be https"
        if not host:
            return "must name a host"
        if is_localhost_name(host):
            if self.allow_loopback:
                return None
            return f"must be a public address: {normal_host(host)} is the loopback name"
        try:
            literal = ip_literal(host)
        except NotAnAddress as refused:
            return str(refused)
        return None if literal is None else self.address_refusal(host, literal)

    def resolved_refusal(self, host: str, addresses: Iterable[IPAddress]) -> str | None:
        """Why a host may not be connected to, given every address it resolves to: one
        address not allowed refuses the host (it could be the one connected to)."""
        for address in addresses:
            refusal = self.address_refusal(host, address)
            if refusal is not None:
                return refusal
        return None
