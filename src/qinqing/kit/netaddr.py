"""Is a host a public one? For URLs the service itself calls (a bank's webhook
receiver): a URL naming a private network, a link-local or cloud-metadata address
(169.254.169.254), or a name only an internal resolver knows would let whoever
sets it make the service call inside its own network.

Addresses are judged with the stdlib ``ipaddress``; a host written as an IPv4
number in one of the forms a resolver also accepts (``10.1``, ``0x7f.1``,
``2130706433``) is read as the address it is, and an IPv6 address that carries an
IPv4 one (mapped, 6to4, NAT64) is judged by that one too.
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that only an internal resolver answers: cloud metadata services, and the
# suffixes reserved for private networks and the local link.
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.azure.internal", "instance-data"}
)
INTERNAL_SUFFIXES = (".internal", ".local", ".localdomain", ".home.arpa", ".lan", ".intranet")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_NUMBER = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def normal_host(host: str) -> str:
    """Lower case, without the root's trailing dot."""
    host = host.strip().lower()
    return host[:-1] if host.endswith(".") else host


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a name."""
    host = normal_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4_NUMBER.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_loopback(ip: IPAddress) -> bool:
    inner = _embedded_v4(ip)
    return ip.is_loopback or (inner is not None and inner.is_loopback)


def is_public(ip: IPAddress) -> bool:
    """A globally routed unicast address: not private, loopback, link-local,
    shared (100.64/10), documentation, reserved, multicast or unspecified, and not
    an IPv6 wrapping of one of those."""
    inner = _embedded_v4(ip)
    if inner is not None and not is_public(inner):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``) or a loopback address."""
    host = normal_host(host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = literal_ip(host)
    return ip is not None and is_loopback(ip)


def public_host(host: str) -> bool:
    """Whether the host may be public, as far as its spelling tells: a public
    address, or a name with a dot that is neither a metadata service's nor under a
    private-use suffix. (What a name resolves to is :func:`resolved_public`'s.)"""
    host = normal_host(host)
    ip = literal_ip(host)
    if ip is not None:
        return is_public(ip)
    if host in METADATA_NAMES or "." not in host:
        return False
    return not host.endswith(INTERNAL_SUFFIXES)


def resolved_public(host: str, port: int | None = None) -> bool:
    """Whether every address the host resolves to now is public. A name that does not
    resolve tells nothing and passes (the caller checks again when it connects)."""
    ip = literal_ip(host)
    if ip is not None:
        return is_public(ip)
    try:
        found = socket.getaddrinfo(normal_host(host), port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    for *_, sockaddr in found:
        address = str(sockaddr[0]).split("%", 1)[0]
        try:
            if not is_public(ipaddress.ip_address(address)):
                return False
        except ValueError:
            return False
    return True
