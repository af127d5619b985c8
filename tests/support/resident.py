"""Test helpers for 共济缴费: a funded employee holder with a resident member."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.accounting.reconcile import reconcile
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.runtime import Runtime
from support.accounts import add_client
from support.family import PAYMENT_PASSWORD, MadeLink, make_active_link
from support.ledger import fund

API = "/api/v1"


def resident_family(
    rt: Runtime,
    client: TestClient,
    *,
    funds_fen: int = 100_000,
    region: str = "150600",
    member_scheme: str = "resident",
    mutual_aid: bool = True,
    relation: str = "father",
    **kw: Any,
) -> MadeLink:
    made = make_active_link(
        rt,
        client,
        relation=relation,
        region=region,
        member_scheme=member_scheme,
        mutual_aid=mutual_aid,
        **kw,
    )
    if funds_fen:
        fund(rt, made.holder_id, funds_fen, region=region)
    # A later instant than the funding, so the statement's order is the payment's.
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(timedelta(seconds=1))
    return made


def pay(
    client: TestClient,
    made: MadeLink,
    year: int = 2027,
    *,
    password: str | None = PAYMENT_PASSWORD,
    headers: dict[str, str] | None = None,
    key: str | None = None,
) -> Any:
    body: dict[str, Any] = {"year": year}
    if password is not None:
        body["verification"] = {"method": "payment_password", "payment_password": password}
    h = dict(headers if headers is not None else made.holder_headers)
    if key is not None:
        h["Idempotency-Key"] = key
    return client.post(
        f"{API}/family/links/{made.link_id}/resident-contribution", headers=h, json=body
    )


def balance_of(rt: Runtime, made: MadeLink) -> int:
    with rt.db.unit_of_work() as s:
        return int(
            s.execute(
                select(LedgerAccount.balance_fen).where(
                    LedgerAccount.code == personal_code(made.holder_id)
                )
            ).scalar_one()
        )


def assert_reconciled(rt: Runtime) -> None:
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


def collector_headers(rt: Runtime, client: TestClient, region: str = "150600") -> dict[str, str]:
    cid, secret = add_client(rt, "collector", region)
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
