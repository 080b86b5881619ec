"""Where webhooks may be sent: the target policy, applied when an endpoint is saved and again at every connection.

Addresses by category (:func:`classify`):

| category | addresses | policy |
| --- | --- | --- |
| ``cloud metadata`` | 169.254.169.254, fd00:ec2::254, 100.100.100.200 | always refused |
| ``link-local`` | 169.254.0.0/16, fe80::/10 | always refused |
| ``unspecified`` | 0.0.0.0/8, :: | always refused |
| ``multicast`` | 224.0.0.0/4, ff00::/8 | always refused |
| ``reserved`` | anything else that is not globally routable (240.0.0.0/4, 255.255.255.255, documentation and benchmarking ranges, fec0::/10, Teredo, ...) | always refused |
| ``loopback`` | 127.0.0.0/8, ::1 | refused unless ``webhook_allow_private_targets`` |
| ``private`` | 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7 | refused unless ``webhook_allow_private_targets`` |
| ``public`` | globally routable | allowed |

IPv6 forms that carry an IPv4 address (``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are
judged by the IPv4 address they carry. The server's own API (the host and port of ``public_url``, and the
address it listens on) is always refused: an endpoint must not make the server call itself.

When an endpoint is created or updated (:meth:`TargetPolicy.check_url`), the URL must be ``http``/``https``
with a host and no credentials; a host that is an IP address in any form a browser or ``inet_aton`` reads as
one (``2852039166``, ``0xA9FEA9FE``, ``0251.0376.0251.0376``, ``169.254.43518``, ``[::ffff:a9fe:a9fe]``) is
judged as that address, and ``localhost``/``*.localhost`` as loopback (RFC 6761). Names are not resolved
then: a name can point anywhere later. At delivery, :class:`GuardedNetworkBackend` resolves the name, checks
every address it resolves to, and connects to a checked address itself, so a name that re-points
(DNS rebinding) is refused too; the request keeps its ``Host`` header and TLS server name.

Usage::

    policy = TargetPolicy.from_settings(settings)
    policy.check_url("https://hooks.example.com/in")   # TargetRefused("private address") etc. otherwise
    async with delivery_client(policy) as http:         # every connection checked
        await http.post(url, content=body)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

IPAddress = IPv4Address | IPv6Address

CLOUD_METADATA = frozenset({IPv4Address("169.254.169.254"), IPv6Address("fd00:ec2::254"), IPv4Address("100.100.100.200")})
PRIVATE_NETWORKS = (
    IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"),
    IPv4Network("100.64.0.0/10"), IPv6Network("fc00::/7"),
)
THIS_NETWORK = IPv4Network("0.0.0.0/8")
NAT64 = IPv6Network("64:ff9b::/96")
ALWAYS_REFUSED = frozenset({"cloud metadata", "link-local", "unspecified", "multicast", "reserved"})
OPT_IN = frozenset({"loopback", "private"})


class TargetRefused(Exception):
    """A webhook target the policy does not allow. ``reason``: ``"<category> address"``, ``"the server's own
    address"``, or what is wrong with the URL; ``str()`` is ``"refused by policy: <reason>"`` (the delivery
    log's text)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused by policy: {reason}")


_DECIMAL = frozenset("0123456789")
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


def _ipv4_number(part: str) -> int:
    """One dotted part as WHATWG's IPv4 number parser and ``inet_aton`` read it: ``0x`` hex, leading-0 octal,
    else decimal. ValueError when it is none of these."""
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, _HEX
        if digits == "":
            return 0
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, _OCTAL
    else:
        digits, base, allowed = part, 10, _DECIMAL
    if not digits or not set(digits) <= allowed:
        raise ValueError(part)
    return int(digits, base)


def parse_ipv4_forms(host: str) -> IPv4Address | None:
    """The IPv4 address a URL host denotes in any of the forms browsers (WHATWG URL, "IPv4 parser") and
    ``inet_aton`` accept: 1 to 4 dot-separated parts, each decimal, ``0x`` hex or leading-0 octal, the last
    part filling the remaining bytes (``2852039166``, ``0xA9FEA9FE``, ``169.254.43518``, ``127.1``), one
    trailing dot allowed.

    Returns None when the host is a name (its last label is not a number). Raises ValueError when the host
    ends in a number but is not a valid address (``1.2.3.4.5``, ``256.1.1.1``): browsers reject such URLs.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    try:
        _ipv4_number(labels[-1])
    except ValueError:
        if labels[-1].isascii() and labels[-1].isdigit():
            raise
        return None
    if len(labels) > 4 or any(label == "" for label in labels):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = [_ipv4_number(label) for label in labels]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return IPv4Address(value)


def normalize_host(host: str) -> str:
    """A URL host as browsers compare it: percent-decoded, NFKC-folded (full-width digits and dots become
    ASCII), lower case, brackets of an IPv6 literal removed."""
    host = unicodedata.normalize("NFKC", unquote(host)).replace("\u3002", ".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is an IP literal in any form (see :func:`parse_ipv4_forms`;
    IPv6 with or without brackets and zone), else None. ValueError for a malformed numeric host."""
    host = normalize_host(host)
    if ":" in host:
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv6 address") from None
    return parse_ipv4_forms(host)


def classify(ip: IPAddress) -> str:
    """The category of ``ip`` (module table): ``public``, ``private``, ``loopback``, ``cloud metadata``,
    ``link-local``, ``unspecified``, ``multicast`` or ``reserved``."""
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            ip = IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:
            return classify(ip.ipv4_mapped)
        embedded = ip.sixtofour or (IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if embedded is not None and classify(embedded) != "public":
            return classify(embedded)
    if ip in CLOUD_METADATA:
        return "cloud metadata"
    if ip.is_unspecified or (isinstance(ip, IPv4Address) and ip in THIS_NETWORK):
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, IPv6Address) and ip.is_site_local:
        return "reserved"
    if ip.is_loopback:
        return "loopback"
    if any(ip.version == net.version and ip in net for net in PRIVATE_NETWORKS):
        return "private"
    if ip.is_global:
        return "public"
    return "reserved"


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class TargetPolicy:
    """What webhook targets this server accepts (module doc).

    ``allow_private``: loopback and private addresses allowed (``webhook_allow_private_targets``).
    ``own_names``: ``(host, port)`` pairs of the server itself (names lower case, IPs as text).
    ``own_addresses``: ``(address, port)`` pairs the server listens on.
    ``own_loopback_ports``: ports the server listens on at every address (``host`` 0.0.0.0 or ::), so at
    every loopback address.
    """

    allow_private: bool
    own_names: frozenset[tuple[str, int]] = frozenset()
    own_addresses: frozenset[tuple[IPAddress, int]] = frozenset()
    own_loopback_ports: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: object) -> TargetPolicy:
        """From :class:`~herewith.config.Settings`: ``webhook_allow_private_targets``, ``public_url``,
        ``host`` and ``port``."""
        names: set[tuple[str, int]] = set()
        addresses: set[tuple[IPAddress, int]] = set()
        loopback_ports: set[int] = set()
        public = urlsplit(getattr(settings, "public_url", "") or "")
        if public.hostname:
            try:
                port = public.port or _default_port(public.scheme)
            except ValueError:
                port = _default_port(public.scheme)
            names.add((normalize_host(public.hostname).rstrip("."), port))
            try:
                ip = parse_ip_literal(public.hostname)
            except ValueError:
                ip = None
            if ip is not None:
                addresses.add((ip, port))
        host, port = getattr(settings, "host", ""), int(getattr(settings, "port", 0) or 0)
        if host and port:
            names.add((normalize_host(host), port))
            try:
                ip = parse_ip_literal(host)
            except ValueError:
                ip = None
            if ip is not None and ip.is_unspecified:
                # Listening on every interface: every loopback address reaches this server at that port.
                loopback_ports.add(port)
                names.add(("localhost", port))
            elif ip is not None:
                addresses.add((ip, port))
        return cls(allow_private=bool(getattr(settings, "webhook_allow_private_targets", False)),
                   own_names=frozenset(names), own_addresses=frozenset(addresses),
                   own_loopback_ports=frozenset(loopback_ports))

    def check_address(self, ip: IPAddress, port: int) -> None:
        """Raise :class:`TargetRefused` unless a connection to ``ip``:``port`` is allowed."""
        category = classify(ip)
        if (ip, port) in self.own_addresses or (category == "loopback" and port in self.own_loopback_ports):
            raise TargetRefused("the server's own address")
        if category in ALWAYS_REFUSED or (category in OPT_IN and not self.allow_private):
            raise TargetRefused(f"{category} address")

    def check_host(self, host: str, port: int) -> None:
        """Raise :class:`TargetRefused` for a host and port that are refused without resolving the name: the
        server's own host and port, an IP literal in any form that :meth:`check_address` refuses,
        ``localhost``/``*.localhost`` when loopback is refused, a malformed numeric host."""
        name = normalize_host(host).rstrip(".")
        if (name, port) in self.own_names:
            raise TargetRefused("the server's own address")
        try:
            ip = parse_ip_literal(host)
        except ValueError:
            raise TargetRefused("not a valid IP address") from None
        if ip is not None:
            self.check_address(ip, port)
        elif (name == "localhost" or name.endswith(".localhost")) and not self.allow_private:
            raise TargetRefused("loopback address")

    def check_url(self, url: str) -> None:
        """Raise :class:`TargetRefused` unless ``url`` may be saved as a webhook target: ``http``/``https``,
        a host, no user name or password, and :meth:`check_host` passes. The host must read the same to
        :func:`urllib.parse.urlsplit` and to httpx (the client that sends), so that no parser difference
        hides the real target."""
        if any(c.isspace() or not c.isprintable() for c in url):
            raise TargetRefused("not a valid URL")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise TargetRefused("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused("must be an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("must not contain a user name or password")
        self.check_host(parts.hostname, port or _default_port(parts.scheme))
        try:
            sent = httpx.URL(url)
        except httpx.InvalidURL:
            raise TargetRefused("not a valid URL") from None
        if sent.userinfo:
            raise TargetRefused("must not contain a user name or password")
        if "\\" in parts.netloc or normalize_host(sent.host).rstrip(".") != normalize_host(parts.hostname).rstrip("."):
            raise TargetRefused("ambiguous host")


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for a TCP connection (the system resolver, as ``connect`` would use
    it), in the resolver's order, without duplicates. An IP literal resolves to itself (any form that the
    system's ``getaddrinfo`` accepts, e.g. ``2852039166``; the standard forms without a lookup thread).
    Raises :class:`socket.gaierror`."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[IPAddress, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]), None)
    return list(seen)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that checks the target of every new connection against a :class:`TargetPolicy`.

    ``connect_tcp(host, port)``: the host/port pair is checked (:meth:`TargetPolicy.check_host`), the name is
    resolved (``resolver``, default :func:`resolve`), every resolved address is checked
    (:meth:`TargetPolicy.check_address`; one refused address refuses the connection), then the backend
    connects to the checked addresses in order until one answers (``connect``, default httpcore's AnyIO
    backend), never resolving the name again. TLS is started by httpcore above this backend with the URL's
    host as server name, so certificates are verified against the name. Raises :class:`TargetRefused`,
    or httpcore's ``ConnectError`` when the name does not resolve (its cause is the :class:`socket.gaierror`).
    """

    def __init__(self, policy: TargetPolicy, resolver: Resolver | None = None,
                 connect: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or resolve
        self.inner = connect or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.AsyncNetworkStream:
        self.policy.check_host(host, port)
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), timeout)
        except socket.gaierror as exc:
            raise httpcore.ConnectError("DNS lookup failed") from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("DNS lookup timed out") from exc
        if not addresses:
            raise httpcore.ConnectError("DNS lookup failed")
        for ip in addresses:
            self.policy.check_address(ip, port)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout=timeout, local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An :class:`httpx.AsyncHTTPTransport` whose connections go through a :class:`GuardedNetworkBackend`;
    no proxy (environment proxies would connect on our behalf, unchecked)."""

    def __init__(self, policy: TargetPolicy, *, verify: ssl.SSLContext | bool = True, resolver: Resolver | None = None,
                 connect: httpcore.AsyncNetworkBackend | None = None, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # SSL_CERT_FILE / SSL_CERT_DIR still apply (an operator's own CA); proxies do not.
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx's transport takes no network backend: its pool is replaced by one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy, resolver, connect),
        )


def delivery_client(policy: TargetPolicy, *, verify: ssl.SSLContext | bool = True, resolver: Resolver | None = None,
                    connect: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncClient:
    """The HTTP client webhook deliveries use: every connection checked (:class:`GuardedTransport`), redirects
    not followed, no environment proxies. ``resolver``/``connect`` replace name resolution and the socket
    connect (tests)."""
    return httpx.AsyncClient(transport=GuardedTransport(policy, verify=verify, resolver=resolver, connect=connect),
                             follow_redirects=False, trust_env=False)
