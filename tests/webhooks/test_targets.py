"""The webhook target policy (herewith.webhooks.targets): when an endpoint is saved (API and CLI) and at every
connection (names resolved and checked, the checked address connected to, Host and TLS server name kept), and
the delivery log's coarse error text. All traffic stays on 127.0.0.1: refused targets are never connected to
(the tests that could connect elsewhere replace the socket connect with one that fails the test)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from herewith.config import Settings
from herewith.webhooks.delivery import Claimed, send
from herewith.webhooks.targets import (
    GuardedNetworkBackend,
    TargetPolicy,
    TargetRefused,
    classify,
    delivery_client,
    parse_ip_literal,
)
from tests.support.servers import ThreadServer, create_org_key, free_port
from tests.webhooks.helpers import Receiver

REFUSING = TargetPolicy(allow_private=False)
ALLOWING = TargetPolicy(allow_private=True)

# (url, reason) refused whatever webhook_allow_private_targets says.
ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://[fd00:ec2::254]/", "cloud metadata address"),
    ("http://100.100.100.200/", "cloud metadata address"),
    ("http://2852039166/", "cloud metadata address"),  # 169.254.169.254 as one decimal number
    ("http://0xA9FEA9FE/", "cloud metadata address"),  # ... as hex
    ("http://0xa9.0xfe.0xa9.0xfe/", "cloud metadata address"),
    ("http://169.254.43518/", "cloud metadata address"),  # the last part fills two bytes
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata address"),  # NAT64
    ("http://[2002:a9fe:a9fe::1]/", "cloud metadata address"),  # 6to4
    ("http://169.254.1.1/", "link-local address"),
    ("http://[fe80::1]/", "link-local address"),
    ("http://0.0.0.0:8080/", "unspecified address"),
    ("http://0/", "unspecified address"),
    ("http://[::]/", "unspecified address"),
    ("http://224.0.0.1/", "multicast address"),
    ("http://[ff02::1]/", "multicast address"),
    ("http://255.255.255.255/", "reserved address"),
    ("http://240.0.0.1/", "reserved address"),
    ("http://192.0.2.10/", "reserved address"),
    ("http://1.2.3.4.5/", "not a valid IP address"),
    ("http://user:secret@hooks.example.com/", "must not contain a user name or password"),
    ("http://hooks.example.com\\@127.0.0.1/", "must not contain a user name or password"),
    ("ftp://hooks.example.com/", "must be an http:// or https:// URL"),
]

# Refused by either policy for what it is, and by httpx (the sending client) as a URL it cannot send to.
OCTAL_DOTTED = "http://0177.0.0.1/"

# (url, reason) refused unless webhook_allow_private_targets.
PRIVATE = [
    ("http://127.0.0.1:8000/hook", "loopback address"),
    ("http://127.1/", "loopback address"),
    ("http://2130706433/", "loopback address"),
    ("http://0x7f000001/", "loopback address"),
    ("http://127.0.0.1./", "loopback address"),
    ("http://[::1]/", "loopback address"),
    ("http://[::ffff:127.0.0.1]/", "loopback address"),
    ("http://%31%32%37.0.0.1/", "loopback address"),
    ("http://localhost:3000/", "loopback address"),
    ("http://hooks.localhost/", "loopback address"),
    ("http://10.0.0.5/", "private address"),
    ("http://172.16.3.4/", "private address"),
    ("http://192.168.1.1/", "private address"),
    ("http://100.64.0.1/", "private address"),
    ("http://[fd12::1]/", "private address"),
    ("http://167772165/", "private address"),  # 10.0.0.5
]

PUBLIC = ["https://hooks.example.com/in", "http://93.184.216.34/", "https://[2606:4700::1111]/",
          "https://bücher.example/hook", "http://hooks.example.com:8443/x?y=1"]


def test_the_default_refuses_private_and_loopback_targets():
    """The field's default, not the environment (tests/webhooks/helpers.py allows loopback for the suite)."""
    assert Settings.model_fields["webhook_allow_private_targets"].default is False
    policy = TargetPolicy.from_settings(Settings(webhook_allow_private_targets=False))
    assert policy.allow_private is False
    assert Settings(webhook_allow_private_targets=False).webhook_max_concurrent_deliveries == 16


@pytest.mark.parametrize("url,reason", ALWAYS_REFUSED + PRIVATE)
def test_refusing_policy(url, reason):
    with pytest.raises(TargetRefused) as refused:
        REFUSING.check_url(url)
    assert refused.value.reason == reason


@pytest.mark.parametrize("url,reason", ALWAYS_REFUSED)
def test_allowing_private_still_refuses_metadata_link_local_and_reserved(url, reason):
    with pytest.raises(TargetRefused) as refused:
        ALLOWING.check_url(url)
    assert refused.value.reason == reason


@pytest.mark.parametrize("url", [u for u, _ in PRIVATE])
def test_allowing_private_accepts_private_and_loopback(url):
    ALLOWING.check_url(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_targets_are_accepted(url):
    REFUSING.check_url(url)


def test_octal_dotted_forms_are_refused_either_way():
    with pytest.raises(TargetRefused) as refused:
        REFUSING.check_url(OCTAL_DOTTED)
    assert refused.value.reason == "loopback address"
    with pytest.raises(TargetRefused) as refused:
        ALLOWING.check_url(OCTAL_DOTTED)
    assert refused.value.reason == "not a valid URL"


def test_ip_forms_and_categories():
    forms = {"2852039166": "169.254.169.254", "0xA9FEA9FE": "169.254.169.254", "0251.0376.0251.0376": "169.254.169.254",
             "169.254.43518": "169.254.169.254", "127.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "0": "0.0.0.0",
             "１２７.０.０.１": "127.0.0.1", "[::1]": "::1", "hooks.example.com": None, "0x": "0.0.0.0"}
    for host, expected in forms.items():
        got = parse_ip_literal(host)
        assert (str(got) if got is not None else None) == expected, host
    for bad in ("256.1.1.1", "1.2.3.4.5", "09.1.1.1", "1.2.3.4294967296", "example.123"):
        with pytest.raises(ValueError):
            parse_ip_literal(bad)
    categories = {"8.8.8.8": "public", "2606:4700::1111": "public", "10.1.2.3": "private", "fc00::1": "private",
                  "127.9.9.9": "loopback", "::1": "loopback", "169.254.0.1": "link-local", "fe80::9": "link-local",
                  "100.100.100.200": "cloud metadata", "fd00:ec2::254": "cloud metadata", "0.1.2.3": "unspecified",
                  "239.1.1.1": "multicast", "198.18.0.1": "reserved", "2001:db8::1": "reserved", "fec0::1": "reserved",
                  "::ffff:10.0.0.1": "private"}
    for address, category in categories.items():
        assert classify(ipaddress.ip_address(address)) == category, address


def test_the_servers_own_url_is_refused_even_with_private_allowed():
    settings = Settings(public_url="https://meet.example.com", host="0.0.0.0", port=8080,
                        webhook_allow_private_targets=True)
    policy = TargetPolicy.from_settings(settings)
    for url in ("https://meet.example.com/v1/meetings", "https://MEET.example.com.:443/", "http://127.0.0.1:8080/v1",
                "http://localhost:8080/", "http://[::1]:8080/", "http://127.0.0.2:8080/"):
        with pytest.raises(TargetRefused) as refused:
            policy.check_url(url)
        assert refused.value.reason == "the server's own address", url
    for url in ("https://meet.example.com:8443/", "http://127.0.0.1:8081/", "https://hooks.example.com/"):
        policy.check_url(url)
    local = TargetPolicy.from_settings(Settings(host="127.0.0.1", port=9000, webhook_allow_private_targets=True))
    with pytest.raises(TargetRefused):
        local.check_url("http://127.0.0.1:9000/v1/meetings")  # public_url defaults to http://127.0.0.1:9000


@pytest.fixture
def refusing_settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    webhook_poll_seconds=0.1, webhook_allow_private_targets=False)


async def test_api_refuses_internal_targets_with_400_naming_url(refusing_settings):
    server = ThreadServer(refusing_settings).start()
    try:
        org = await create_org_key(server.settings, "Org")
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers) as api:
            for url, reason in ALWAYS_REFUSED + PRIVATE + [(server.base_url + "/v1/meetings", "the server's own address")]:
                r = await api.post("/webhooks", json={"url": url})
                assert r.status_code == 400, (url, r.text)
                assert "url" in r.json()["data"], url
                if not reason.startswith("must be"):
                    assert r.json()["data"]["url"] == f"refused by policy: {reason}", url
            assert (await api.get("/webhooks")).json()["results"] == []
            created = await api.post("/webhooks", json={"url": "https://hooks.example.com/in"})
            assert created.status_code == 201
            hook_id = created.json()["webhookId"]
            for url in ("http://2852039166/", "http://10.0.0.5/", "http://localhost/"):
                r = await api.patch(f"/webhooks/{hook_id}", json={"url": url})
                assert r.status_code == 400 and "url" in r.json()["data"], url
            assert (await api.get(f"/webhooks/{hook_id}")).json()["url"] == "https://hooks.example.com/in"
            r = await api.patch(f"/webhooks/{hook_id}", json={"url": "https://hooks2.example.com/in"})
            assert r.status_code == 200
    finally:
        server.stop()


async def test_api_with_private_allowed_still_refuses_metadata_and_itself(server, client):
    for url in ("http://169.254.169.254/", "http://0xA9FEA9FE/", "http://[fd00:ec2::254]/", server.base_url + "/v1/meetings"):
        r = await client.post("/webhooks", json={"url": url})
        assert r.status_code == 400 and "url" in r.json()["data"], url
    assert (await client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})).status_code == 201


# --- at connection time ---------------------------------------------------------------------------------------


class NoConnect(httpcore.AsyncNetworkBackend):
    """A socket connect that fails the test: a refused target must never be connected to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.calls.append((host, port))
        raise AssertionError(f"connected to {host}:{port}")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def resolver_for(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


@pytest.mark.parametrize("addresses,policy,reason", [
    (["127.0.0.1"], REFUSING, "loopback address"),
    (["10.0.0.7"], REFUSING, "private address"),
    (["93.184.216.34", "169.254.169.254"], ALLOWING, "cloud metadata address"),  # one bad address refuses all
    (["fe80::1"], ALLOWING, "link-local address"),
    (["::ffff:169.254.169.254"], ALLOWING, "cloud metadata address"),
])
async def test_a_name_that_resolves_to_a_refused_address_is_refused_before_connecting(addresses, policy, reason):
    """DNS rebinding: the URL passed when saved (a name), but the name now points inside."""
    policy.check_url("http://rebind.example.com/hook")
    no_connect = NoConnect()
    backend = GuardedNetworkBackend(policy, resolver_for({"rebind.example.com": addresses}), no_connect)
    with pytest.raises(TargetRefused) as refused:
        await backend.connect_tcp("rebind.example.com", 80, timeout=1)
    assert refused.value.reason == reason and no_connect.calls == []
    async with delivery_client(policy, resolver=resolver_for({"rebind.example.com": addresses}), connect=no_connect) as http:
        outcome = await send(http, _claimed("http://rebind.example.com/hook"), dt.datetime.now(dt.timezone.utc), 2)
    assert outcome.status_code is None and outcome.error == f"refused by policy: {reason}" and no_connect.calls == []


async def test_the_servers_own_address_is_refused_at_connection_time():
    policy = TargetPolicy.from_settings(Settings(host="127.0.0.1", port=8123, webhook_allow_private_targets=True))
    no_connect = NoConnect()
    backend = GuardedNetworkBackend(policy, resolver_for({"alias.example.com": ["127.0.0.1"]}), no_connect)
    with pytest.raises(TargetRefused) as refused:
        await backend.connect_tcp("alias.example.com", 8123, timeout=1)
    assert refused.value.reason == "the server's own address" and no_connect.calls == []


async def test_the_checked_address_is_connected_to_with_the_host_header_kept():
    receiver = Receiver().start()
    try:
        url = f"http://hooks.example.com:{receiver.port}/hook"
        async with delivery_client(ALLOWING, resolver=resolver_for({"hooks.example.com": ["127.0.0.1"]})) as http:
            outcome = await send(http, _claimed(url), dt.datetime.now(dt.timezone.utc), 5)
        assert outcome.status_code == 200 and outcome.error is None
        assert receiver.received[0].headers["Host"] == f"hooks.example.com:{receiver.port}"
    finally:
        receiver.stop()


async def test_redirects_are_not_followed():
    receiver = Receiver(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}).start()
    try:
        async with delivery_client(ALLOWING, connect=_only_loopback()) as http:
            outcome = await send(http, _claimed(receiver.url), dt.datetime.now(dt.timezone.utc), 5)
        assert outcome.status_code == 302 and outcome.error == "HTTP 302" and not outcome.succeeded
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


def _only_loopback() -> httpcore.AsyncNetworkBackend:
    class Loopback(httpcore.AnyIOBackend):
        async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
            assert ipaddress.ip_address(host).is_loopback, host
            return await super().connect_tcp(host, port, *args, **kwargs)

    return Loopback()


def _claimed(url: str) -> Claimed:
    return Claimed(webhook_event_id="e", endpoint_id="w", event_id="ev", type="room.client.knocked", attempt=1,
                   payload=b'{"id":"ev"}', url=url, secret="whsec_test")


# --- TLS: the certificate is checked against the name, the server name (SNI) is the name ------------------------


def _tls_material(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for ``name`` signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Herewith test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class TLSReceiver:
    """An HTTPS receiver on 127.0.0.1 that answers 200 and records the TLS server names (SNI) it was asked for."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.port = free_port()
        self.server_names: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)  # type: ignore[assignment]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):  # noqa: ANN202
                sock, address = super().get_request()
                return context.wrap_socket(sock, server_side=True), address

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # failed handshakes are the point of some tests

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_https_keeps_the_server_name_and_verifies_the_certificate_against_it(tmp_path):
    ca, cert, key = _tls_material(tmp_path, "hooks.example.com")
    receiver = TLSReceiver(cert, key)
    try:
        trust = ssl.create_default_context(cafile=str(ca))
        resolver = resolver_for({"hooks.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]})
        async with delivery_client(ALLOWING, verify=trust, resolver=resolver, connect=_only_loopback()) as http:
            ok = await send(http, _claimed(f"https://hooks.example.com:{receiver.port}/hook"),
                            dt.datetime.now(dt.timezone.utc), 5)
            wrong_name = await send(http, _claimed(f"https://other.example.com:{receiver.port}/hook"),
                                    dt.datetime.now(dt.timezone.utc), 5)
        assert ok.status_code == 200, ok
        assert "hooks.example.com" in receiver.server_names
        assert wrong_name.status_code is None and wrong_name.error == "TLS error"
        async with delivery_client(ALLOWING, resolver=resolver, connect=_only_loopback()) as http:  # system CAs
            untrusted = await send(http, _claimed(f"https://hooks.example.com:{receiver.port}/hook"),
                                   dt.datetime.now(dt.timezone.utc), 5)
        assert untrusted.error == "TLS error"
    finally:
        receiver.stop()


# --- the delivery log's error text ----------------------------------------------------------------------------


async def test_delivery_log_errors_are_categories_without_addresses_or_ports():
    closed = free_port()
    hanging = Receiver(delay=5).start()
    failing = Receiver(status=500).start()
    try:
        async with delivery_client(ALLOWING, connect=_only_loopback()) as http:
            now = dt.datetime.now(dt.timezone.utc)
            refused = await send(http, _claimed(f"http://127.0.0.1:{closed}/hook"), now, 2)
            timeout = await send(http, _claimed(hanging.url), now, 0.5)
            server_error = await send(http, _claimed(failing.url), now, 2)
        async with delivery_client(REFUSING, connect=NoConnect()) as http:
            policy = await send(http, _claimed(f"http://127.0.0.1:{closed}/hook"), now, 2)
        async def no_such_name(host: str, port: int) -> list[Any]:
            import socket

            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async with delivery_client(ALLOWING, resolver=no_such_name, connect=NoConnect()) as http:
            dns = await send(http, _claimed("http://nowhere.example.com/hook"), now, 2)
        assert refused.error == "connection refused"
        assert timeout.error == "timeout" and 400 <= timeout.duration_ms < 2000
        assert server_error.error == "HTTP 500" and server_error.status_code == 500
        assert policy.error == "refused by policy: loopback address"
        assert dns.error == "DNS lookup failed"
        for outcome in (refused, timeout, server_error, policy, dns):
            assert str(closed) not in outcome.error and "127.0.0.1" not in outcome.error
    finally:
        hanging.stop()
        failing.stop()


async def test_a_target_refused_at_send_time_is_logged_and_retried_like_any_failure(tmp_path, database_url):
    """The endpoint was saved while loopback was allowed; the server now refuses it: the worker never
    connects, and the log says why in policy terms."""
    allowed = Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       webhook_poll_seconds=0.1, webhook_allow_private_targets=True)
    receiver = Receiver().start()
    org = await create_org_key(allowed, "Org")
    first = ThreadServer(allowed).start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers) as api:
            hook = (await api.post("/webhooks", json={"url": receiver.url})).json()
    finally:
        first.stop()
    second = ThreadServer(allowed.model_copy(update={"webhook_allow_private_targets": False})).start()
    try:
        async def enqueue() -> None:
            from herewith.webhooks import service

            async with second.services.sessionmaker() as s:
                await service.enqueue(s, org.organization_id, "room.client.knocked", {"n": 1}, second.clock.now())
                await s.commit()
            second.services.webhook_wakeup.set()

        second.run_coro(enqueue())
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers) as api:
            async def log() -> list[dict]:
                return (await api.get(f"/webhooks/{hook['webhookId']}/deliveries")).json()["results"]

            for _ in range(100):
                if await log():
                    break
                await asyncio.sleep(0.05)
            (attempt,) = await log()
        assert attempt["error"] == "refused by policy: loopback address" and attempt["statusCode"] is None
        assert not receiver.received and receiver.started == 0
    finally:
        second.stop()
        receiver.stop()
