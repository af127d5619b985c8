"""`qinqing clients set-webhook ID URL [--json]`: a bank's webhook URL changed by an
operator, a new `whsec_` secret shown once (the old one stops signing), audited;
and webhook URLs that would make the service call inside its own network —
private, shared, link-local and cloud-metadata addresses however written,
internal names — are refused (and, in production, names that resolve to them,
and loopback)."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.banks.endpoints import SECRET_KIND
from qinqing.banks.models import WebhookEndpoint
from qinqing.entrypoints.cli import app
from qinqing.kit import netaddr
from qinqing.kit.errors import DomainError
from qinqing.ops.clients import check_webhook_host
from qinqing.runtime import Runtime

NOT_PUBLIC = [
    "https://169.254.169.254/latest/meta-data/iam/",
    "https://10.0.0.5/hooks",
    "https://10.1/hooks",  # 10.0.0.1, as a resolver reads it
    "https://0xa9.0xfe.0xa9.0xfe/",  # 169.254.169.254
    "https://[::ffff:10.0.0.5]/",
    "https://[fe80::1]/",
    "https://[fd00:ec2::254]/",  # a cloud's IPv6 metadata address
    "https://192.168.1.10:8443/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://bank.internal/hooks",
    "https://intranet/hooks",
]


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
        "QINQING_ARGON2_TIME_COST": "1",
        "QINQING_ARGON2_MEMORY_KIB": "1024",
        "QINQING_ARGON2_PARALLELISM": "1",
    }


def _cli(rt: Runtime, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=_env(rt))


def _endpoint(rt: Runtime, client_id: str) -> tuple[str, str]:
    with rt.db.unit_of_work() as s:
        row = s.execute(
            select(WebhookEndpoint).where(WebhookEndpoint.client_id == client_id)
        ).scalar_one()
        return row.url, rt.vault.decrypt(SECRET_KIND, row.secret_cipher)


def _bank(rt: Runtime) -> tuple[str, str]:
    r = _cli(
        rt,
        *("clients", "add", "某银行", "--kind", "bank", "--region", "150600"),
        *("--bank-code", "ICBC", "--webhook-url", "https://bank.example/old", "--json"),
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    return out["client_id"], out["webhook_secret"]


def test_set_webhook_issues_a_new_secret_shown_once(rt: Runtime) -> None:
    client_id, first = _bank(rt)
    r = _cli(rt, "clients", "set-webhook", client_id, "https://bank.example/new", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"client_id", "webhook_url", "webhook_secret"}
    assert out["client_id"] == client_id and out["webhook_url"] == "https://bank.example/new"
    assert out["webhook_secret"].startswith("whsec_") and out["webhook_secret"] != first
    # Stored: the new URL, and the new secret (encrypted) signs from now on.
    assert _endpoint(rt, client_id) == ("https://bank.example/new", out["webhook_secret"])
    with rt.db.engine.connect() as conn:
        from sqlalchemy import text

        rows = repr(conn.execute(text("SELECT * FROM bank_webhook_endpoints")).all())
    assert out["webhook_secret"][6:] not in rows
    with rt.db.unit_of_work() as s:
        audited = s.execute(
            select(AuditEntry).where(AuditEntry.action == "webhook.endpoint.set")
        ).scalars()
        assert [e.channel for e in audited] == ["admin", "admin"]
    # Without --json: the same, for a person at a terminal, with the warning.
    r = _cli(rt, "clients", "set-webhook", client_id, "https://bank.example/v3")
    assert r.exit_code == 0, r.output
    url, secret = _endpoint(rt, client_id)
    assert url == "https://bank.example/v3" and f"webhook_secret: {secret}" in r.output
    assert "shown only now" in r.output


def test_set_webhook_refuses_unknown_clients_and_non_banks(rt: Runtime) -> None:
    r = _cli(rt, "clients", "set-webhook", "qq_nobody", "https://bank.example/x")
    assert r.exit_code == 1 and "CLIENT_NOT_FOUND" in r.output
    r = _cli(rt, "clients", "add", "医院", "--kind", "institution", "--region", "150600", "--json")
    hospital = json.loads(r.stdout)["client_id"]
    r = _cli(rt, "clients", "set-webhook", hospital, "https://bank.example/x")
    assert r.exit_code == 1 and "WEBHOOK_ONLY_FOR_BANKS" in r.output


def test_urls_inside_the_network_are_refused_and_nothing_changes(rt: Runtime) -> None:
    client_id, secret = _bank(rt)
    for url in NOT_PUBLIC:
        r = _cli(rt, "clients", "set-webhook", client_id, url, "--json")
        assert r.exit_code == 1 and "WEBHOOK_URL_NOT_PUBLIC" in r.output, (url, r.output)
        assert r.stdout == ""
    for url in ("http://bank.example/hooks", "ftp://bank.example/", "https://u:p@bank.example/"):
        r = _cli(rt, "clients", "set-webhook", client_id, url)
        assert r.exit_code == 1 and "WEBHOOK_URL_INVALID" in r.output, (url, r.output)
    assert _endpoint(rt, client_id) == ("https://bank.example/old", secret)
    # The same check at `clients add`.
    r = _cli(
        rt,
        *("clients", "add", "某银行", "--kind", "bank", "--region", "150600"),
        *("--bank-code", "BOC", "--webhook-url", "https://10.0.0.5/hooks"),
    )
    assert r.exit_code == 1 and "WEBHOOK_URL_NOT_PUBLIC" in r.output
    # A receiver on this machine stays allowed outside production (the demo's).
    for url in ("http://127.0.0.1:8099/webhooks", "https://localhost:9/x", "http://[::1]:8/"):
        r = _cli(rt, "clients", "set-webhook", client_id, url, "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)["webhook_url"] == url, r.output


@pytest.mark.parametrize(
    ("url", "addresses", "public"),
    [
        ("https://bank.example/hooks", ["10.0.0.5"], False),
        ("https://bank.example/hooks", ["1.1.1.1", "169.254.169.254"], False),
        ("https://bank.example/hooks", ["1.1.1.1", "2606:4700::1111"], True),
        ("https://bank.example/hooks", [], True),  # does not resolve (yet): nothing to judge
        ("http://127.0.0.1:8099/webhooks", [], False),  # loopback is for development
        ("https://localhost/hooks", ["127.0.0.1"], False),
    ],
)
def test_in_production_the_name_must_resolve_to_public_addresses(
    monkeypatch: pytest.MonkeyPatch, url: str, addresses: list[str], public: bool
) -> None:
    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 443))
            for a in addresses
        ]

    monkeypatch.setattr(netaddr.socket, "getaddrinfo", resolve)
    production = SimpleNamespace(settings=SimpleNamespace(is_production=True))
    if public:
        check_webhook_host(production, url)  # type: ignore[arg-type]
        return
    with pytest.raises(DomainError) as refused:
        check_webhook_host(production, url)  # type: ignore[arg-type]
    assert refused.value.code == "WEBHOOK_URL_NOT_PUBLIC"
