"""Test helpers of the bank channel: bank clients with tokens, bank links, receivers."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select
from stdnum import luhn

from qinqing.access.principal import Principal
from qinqing.auth import service as auth
from qinqing.auth.models import ApiClient
from qinqing.auth.sms import SIMULATED_FILE
from qinqing.banks import service as banks
from qinqing.banks.endpoints import set_endpoint
from qinqing.banks.models import BankLink
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from support.accounts import OPERATOR

API = "/api/v1"


def card_number(seq: int, prefix: str = "621483") -> str:
    """A Luhn-valid 16-digit card number, different for each ``seq``."""
    body = f"{prefix}{seq:09d}"
    return body + luhn.calc_check_digit(body)


@dataclass(frozen=True)
class Bank:
    client_id: str
    bank_code: str
    headers: dict[str, str]


def client_headers(client: TestClient, client_id: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def add_bank(
    rt: Runtime,
    client: TestClient,
    bank_code: str = "BANKA",
    *,
    region: str = "150600",
    webhook_url: str | None = None,
) -> tuple[Bank, str | None]:
    """A bank client with a token (and a webhook endpoint when ``webhook_url`` is given)."""
    with rt.db.unit_of_work() as s:
        c, secret = auth.add_client(
            s,
            rt,
            name=f"bank {bank_code}",
            kind="bank",
            region_code=region,
            bank_code=bank_code,
            actor=OPERATOR,
        )
        wh = set_endpoint(s, rt, c, webhook_url, actor=OPERATOR) if webhook_url else None
    return Bank(c.id, bank_code, client_headers(client, c.id, secret)), wh


def add_webhook(rt: Runtime, client_id: str, url: str) -> str:
    with rt.db.unit_of_work() as s:
        c = s.get(ApiClient, client_id)
        assert c is not None
        return set_endpoint(s, rt, c, url, actor=OPERATOR)


def link_customer(
    client: TestClient,
    bank: Bank,
    id_number: str,
    name: str,
    account: str,
    *,
    confirm: bool = True,
    **headers: str,
) -> Any:
    """POST /bank-links as a bank for its customer; returns the response (202, the
    pending link). With ``confirm`` (the default) the person then confirms it in
    the app, so the link is active, as most tests need a customer."""
    r = client.post(
        f"{API}/bank-links",
        headers={**bank.headers, **headers},
        json={"account_number": account, "id_number": id_number, "name": name},
    )
    if confirm and r.status_code == 202 and not r.headers.get("idempotent-replayed"):
        confirm_as_person(client, r.json()["id"])
    return r


def person_principal(person_id: uuid.UUID) -> Principal:
    return Principal("person", str(person_id), "app", "-", person_id=person_id)


def confirm_as_person(client: TestClient, link_id: str) -> bool:
    """The person behind a pending bank-started link confirms it (as in the app);
    False for a link of nobody (a bank named someone who is not its customer)."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.unit_of_work() as s:
        link = s.execute(select(BankLink).where(BankLink.id == uuid.UUID(link_id))).scalar_one()
        if link.status != "pending" or s.get(Person, link.person_id) is None:
            return False
        banks.confirm_link(s, rt, person_principal(link.person_id), link.id)
    return True


def sms_codes(rt: Runtime) -> list[dict[str, str]]:
    """Every message the simulated SMS provider wrote, oldest first."""
    path = rt.settings.data_dir / SIMULATED_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


# --- a real HTTP receiver on 127.0.0.1 --------------------------------------------------


@dataclass
class Receiver:
    """Records every POST; answers with the next scripted status (200 when none is left)
    or, for the string "hang", waits until released (a timeout for the sender)."""

    url: str = ""
    script: list[int | str] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    # Over HTTPS: why each handshake a sender broke off failed, as OpenSSL names it.
    tls_refusals: list[str] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


def self_signed_tls(folder: Path) -> ssl.SSLContext:
    """A server's TLS context with a certificate for 127.0.0.1 that no one signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "receiver.crt", folder / "receiver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@contextmanager
def receiver(
    script: list[int | str] | None = None, *, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    """A bank's webhook receiver on 127.0.0.1 answering each POST as ``script`` says
    (a status, or "hang"), then 200; over HTTPS with ``tls``."""
    rec = Receiver(script=list(script or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            rec.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            action = rec.script.pop(0) if rec.script else 200
            if action == "hang":
                rec.release.wait(10)
                action = 200
            self.send_response(int(action))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def get_request(self) -> tuple[Any, Any]:
            try:
                return super().get_request()
            except ssl.SSLError as exc:
                rec.tls_refusals.append(str(exc.reason))
                raise

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "http" if tls is None else "https"
    rec.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
