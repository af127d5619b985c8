"""`qinqing clients list`, `disable` and `rotate-secret`: an operator can see every
client, stop a leaked one at once, and replace its secret (shown once), each audited."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.entrypoints.cli import app
from qinqing.runtime import Runtime
from support.accounts import add_client

API = "/api/v1"


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
        "QINQING_DATA_DIR": str(rt.settings.data_dir),
        "QINQING_ARGON2_TIME_COST": "1",
        "QINQING_ARGON2_MEMORY_KIB": "1024",
        "QINQING_ARGON2_PARALLELISM": "1",
    }


def _cli(rt: Runtime, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args), env=_env(rt))
    return r.exit_code, r.stdout if r.exit_code == 0 else r.output


def _token(client: TestClient, cid: str, secret: str) -> int:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    return r.status_code if r.status_code != 200 else 200


def _bearer(client: TestClient, cid: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def test_list_shows_every_client_and_no_secret(rt: Runtime) -> None:
    bank, bank_secret = add_client(rt, "bank", bank_code="ICBC")
    hospital, hospital_secret = add_client(rt, "institution", "440100")
    code, out = _cli(rt, "clients", "list", "--json")
    assert code == 0, out
    rows = {r["client_id"]: r for r in json.loads(out)}
    assert rows[bank]["kind"] == "bank" and rows[bank]["bank_code"] == "ICBC"
    assert rows[hospital]["region"] == "440100" and not rows[hospital]["disabled"]
    assert bank_secret not in out and hospital_secret not in out
    code, table = _cli(rt, "clients", "list")
    assert code == 0 and bank in table


def test_disable_stops_new_tokens_and_the_ones_it_has(rt: Runtime, client: TestClient) -> None:
    cid, secret = add_client(rt, "institution")
    headers = _bearer(client, cid, secret)
    probe = {"holder_id_number": "x", "member_id_number": "y", "amount_fen": 1, "reference": "r"}
    assert client.post(f"{API}/payments/authorize", headers=headers, json=probe).status_code != 401
    code, out = _cli(rt, "clients", "disable", cid)
    assert code == 0 and "1 token(s) ended" in out
    assert client.post(f"{API}/payments/authorize", headers=headers, json=probe).status_code == 401
    assert _token(client, cid, secret) == 401
    code, out = _cli(rt, "clients", "disable", "qq_no_such")
    assert code != 0 and "CLIENT_NOT_FOUND" in out


def test_rotate_secret_replaces_it_once_and_ends_the_old_tokens(
    rt: Runtime, client: TestClient
) -> None:
    cid, old = add_client(rt, "institution")
    headers = _bearer(client, cid, old)
    code, out = _cli(rt, "clients", "rotate-secret", cid, "--json")
    assert code == 0, out
    new = json.loads(out)
    assert new["client_id"] == cid and new["client_secret"] != old
    assert _token(client, cid, old) == 401
    assert _token(client, cid, new["client_secret"]) == 200
    probe = {"holder_id_number": "x", "member_id_number": "y", "amount_fen": 1, "reference": "r"}
    assert client.post(f"{API}/payments/authorize", headers=headers, json=probe).status_code == 401
    with rt.db.unit_of_work() as s:
        actions = list(s.execute(select(AuditEntry.action, AuditEntry.channel)))
    assert ("client.rotate_secret", "admin") in actions
