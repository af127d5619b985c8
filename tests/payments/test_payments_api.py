"""Payments over HTTP on both databases: authorize → settle / void, each once;
holds expire; idempotent retries; the ledger reconciles after every scenario.

An authorization by bare ID numbers refused for a reason about the persons is
answered MUTUAL_AID_UNAVAILABLE (tests/payments/test_institution_probes.py); the
rules are checked here through the real reason in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.accounting.reconcile import reconcile
from qinqing.audit.models import AuditEntry
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.runtime import Runtime
from support.ledger import API, Family, authorize_body, fund, institution_headers, make_family


@pytest.fixture
def fam(rt: Runtime) -> Family:
    f = make_family(rt)
    fund(rt, f.holder_id, 100_000)
    return f


@pytest.fixture
def inst(rt: Runtime, client: TestClient) -> dict[str, str]:
    # Long-lived so tests that move the clock past hold expiry keep their token.
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    return institution_headers(rt, client)


@pytest.fixture(autouse=True)
def _reconciles(rt: Runtime) -> Iterator[None]:
    yield
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


def _account(rt: Runtime, fam: Family) -> tuple[int, int]:
    with rt.db.unit_of_work() as s:
        a = s.execute(
            select(LedgerAccount).where(LedgerAccount.code == personal_code(fam.holder_id))
        ).scalar_one()
        return a.balance_fen, a.held_fen


def _refused_for(rt: Runtime, r: Any, reason: str) -> None:
    """The one answer an institution gets without a voucher, and the real reason in
    the audit log's last probe entry."""
    assert (r.status_code, r.json()["code"]) == (409, "MUTUAL_AID_UNAVAILABLE"), r.text
    with rt.db.read_only() as s:
        entry = s.execute(
            select(AuditEntry)
            .where(AuditEntry.action == "payment.authorize_refused")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).scalar_one()
        assert entry.details["code"] == reason


def _auth(client: TestClient, inst: dict[str, str], fam: Family, amount: int, ref: str) -> dict:
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, amount, ref), headers=inst
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_authorize_then_settle_less_releases_the_rest(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    p = _auth(client, inst, fam, 30_000, "BILL-1")
    assert p["status"] == "authorized" and p["amount_fen"] == 30_000
    assert _account(rt, fam) == (100_000, 30_000)
    r = client.post(
        f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 23_050}, headers=inst
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "settled" and r.json()["settled_fen"] == 23_050
    assert r.json()["released_fen"] == 6_950
    assert _account(rt, fam) == (100_000 - 23_050, 0)


def test_insufficient_balance(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    _auth(client, inst, fam, 60_000, "A")
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 40_001, "B"), headers=inst
    )
    _refused_for(rt, r, "INSUFFICIENT_BALANCE")
    _auth(client, inst, fam, 40_000, "C")


def test_yearly_limit(rt: Runtime, client: TestClient, inst: dict[str, str]) -> None:
    fam = make_family(rt, seq=7, yearly_limit_fen=50_000)
    fund(rt, fam.holder_id, 100_000)
    first = _auth(client, inst, fam, 30_000, "Y1")
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 20_001, "Y2"), headers=inst
    )
    _refused_for(rt, r, "YEARLY_LIMIT_EXCEEDED")
    # Settling for less frees the difference of the limit.
    client.post(
        f"{API}/payments/{first['payment_id']}/settle", json={"amount_fen": 25_000}, headers=inst
    )
    _auth(client, inst, fam, 25_000, "Y3")


def test_ended_link_and_non_mutual_aid(
    rt: Runtime, client: TestClient, inst: dict[str, str]
) -> None:
    ended = make_family(rt, seq=3, link_status="ended")
    fund(rt, ended.holder_id, 10_000)
    r = client.post(f"{API}/payments/authorize", json=authorize_body(ended, 100, "E"), headers=inst)
    _refused_for(rt, r, "NO_MUTUAL_AID_LINK")
    plain = make_family(rt, seq=4, mutual_aid=False)
    fund(rt, plain.holder_id, 10_000)
    r = client.post(f"{API}/payments/authorize", json=authorize_body(plain, 100, "F"), headers=inst)
    _refused_for(rt, r, "NO_MUTUAL_AID_LINK")


def test_non_employee_and_inactive_holder(
    rt: Runtime, client: TestClient, inst: dict[str, str]
) -> None:
    resident = make_family(rt, seq=5, holder_scheme="resident")
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(resident, 100, "R"), headers=inst
    )
    _refused_for(rt, r, "HOLDER_NOT_EMPLOYEE")
    arrears = make_family(rt, seq=6, holder_status="arrears")
    fund(rt, arrears.holder_id, 10_000)
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(arrears, 100, "S"), headers=inst
    )
    _refused_for(rt, r, "PAYER_NOT_ACTIVE")


def test_settle_more_than_held_double_settle_and_void_after_settle(
    client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    p = _auth(client, inst, fam, 10_000, "D")
    url = f"{API}/payments/{p['payment_id']}"
    r = client.post(f"{url}/settle", json={"amount_fen": 10_001}, headers=inst)
    assert r.status_code == 422 and r.json()["code"] == "SETTLE_EXCEEDS_HOLD"
    assert (
        client.post(f"{url}/settle", json={"amount_fen": 10_000}, headers=inst).status_code == 200
    )
    r = client.post(f"{url}/settle", json={"amount_fen": 10_000}, headers=inst)
    assert r.status_code == 409 and r.json()["code"] == "PAYMENT_ALREADY_RESOLVED"
    r = client.post(f"{url}/void", headers=inst)
    assert r.status_code == 409 and r.json()["code"] == "PAYMENT_ALREADY_RESOLVED"


def test_void_releases_and_resolves_once(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    p = _auth(client, inst, fam, 10_000, "V")
    r = client.post(f"{API}/payments/{p['payment_id']}/void", headers=inst)
    assert (
        r.status_code == 200
        and r.json()["status"] == "voided"
        and r.json()["released_fen"] == 10_000
    )
    assert _account(rt, fam) == (100_000, 0)
    assert client.post(f"{API}/payments/{p['payment_id']}/void", headers=inst).status_code == 409


def test_hold_expires_after_policy_hours(
    rt: Runtime, client: TestClient, clock: FrozenClock, fam: Family, inst: dict[str, str]
) -> None:
    p = _auth(client, inst, fam, 90_000, "X")
    hours = rt.policies.policy("150600").hold_expiry_hours
    clock.advance(timedelta(hours=hours) - timedelta(seconds=1))
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 20_000, "X2"), headers=inst
    )
    _refused_for(rt, r, "INSUFFICIENT_BALANCE")
    clock.advance(timedelta(seconds=2))
    # Lazily released: a new hold now fits, and the old one cannot be settled.
    _auth(client, inst, fam, 20_000, "X3")
    r = client.post(
        f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 1}, headers=inst
    )
    assert r.status_code == 409 and r.json()["code"] == "PAYMENT_EXPIRED"
    assert _account(rt, fam) == (100_000, 20_000)


def test_expire_command_releases_overdue_holds(
    rt: Runtime, client: TestClient, clock: FrozenClock, fam: Family, inst: dict[str, str]
) -> None:
    from qinqing.payments.service import expire_holds

    _auth(client, inst, fam, 5_000, "C1")
    _auth(client, inst, fam, 6_000, "C2")
    clock.advance(timedelta(hours=rt.policies.policy("150600").hold_expiry_hours, seconds=1))
    with rt.db.unit_of_work() as s:
        assert expire_holds(s, clock.now()) == 2
    assert _account(rt, fam) == (100_000, 0)
    with rt.db.unit_of_work() as s:
        assert expire_holds(s, clock.now()) == 0


def test_idempotent_replay_and_mismatch(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    h = {**inst, "Idempotency-Key": "auth-7f3a"}
    first = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 1_000, "I1"), headers=h
    )
    again = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 1_000, "I1"), headers=h
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _account(rt, fam) == (100_000, 1_000)
    other = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 2_000, "I1"), headers=h
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_MISMATCH"
    # Without a key the same reference is a duplicate bill, not a retry.
    dup = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 1_000, "I1"), headers=inst
    )
    assert dup.status_code == 409 and dup.json()["code"] == "PAYMENT_REFERENCE_EXISTS"


def test_only_the_authorizing_institution_sees_a_payment(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    p = _auth(client, inst, fam, 1_000, "O")
    other = institution_headers(rt, client)
    r = client.post(
        f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 1_000}, headers=other
    )
    assert r.status_code == 404
    assert client.post(f"{API}/payments/not-a-uuid/void", headers=inst).status_code == 404


def test_institution_of_another_region(rt: Runtime, client: TestClient, fam: Family) -> None:
    far = institution_headers(rt, client, region="440100")
    r = client.post(f"{API}/payments/authorize", json=authorize_body(fam, 100, "G"), headers=far)
    # As for an unknown number (tests/api/test_existence_oracles.py).
    _refused_for(rt, r, "PERSON_NOT_FOUND")


def test_scope_is_required(rt: Runtime, client: TestClient, fam: Family) -> None:
    from support.accounts import add_client

    cid, secret = add_client(rt, "collector")
    tok = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    r = client.post(f"{API}/payments/authorize", json=authorize_body(fam, 100, "Z"), headers=h)
    assert r.status_code == 403 and r.json()["code"] == "INSUFFICIENT_SCOPE"


def test_batch_results_in_order_and_failures_do_not_undo_others(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    ops = [
        {"op": "authorize", **authorize_body(fam, 40_000, "B1")},
        {"op": "authorize", **authorize_body(fam, 70_000, "B2")},  # over the balance
        {"op": "authorize", **authorize_body(fam, 50_000, "B3")},
        {"op": "authorize", **authorize_body(fam, 1, "B1")},  # reference reused
        {"op": "void", "payment_id": "00000000-0000-0000-0000-000000000000"},
    ]
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=inst)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["ok"] for x in res] == [True, False, True, False, False]
    assert [x["code"] for x in res] == [
        None,
        "MUTUAL_AID_UNAVAILABLE",
        None,
        "PAYMENT_REFERENCE_EXISTS",
        "PAYMENT_NOT_FOUND",
    ]
    assert r.json()["succeeded"] == 2 and r.json()["failed"] == 3
    b1, b3 = res[0]["payment_id"], res[2]["payment_id"]
    ops2 = [
        {"op": "settle", "payment_id": b1, "amount_fen": 40_000},
        {"op": "settle", "payment_id": b1, "amount_fen": 40_000},  # twice in one batch
        {"op": "void", "payment_id": b3},
    ]
    r = client.post(f"{API}/payments/batch", json={"operations": ops2}, headers=inst)
    assert [x["code"] for x in r.json()["results"]] == [None, "PAYMENT_ALREADY_RESOLVED", None]
    assert _account(rt, fam) == (60_000, 0)


def test_a_settlement_batch_releases_the_accounts_overdue_holds(
    rt: Runtime, client: TestClient, clock: FrozenClock, fam: Family, inst: dict[str, str]
) -> None:
    """A batch of settles and voids lets go of the holds on its accounts that are past
    their expiry, not only of its own payments; a payment settled after a refused
    settle of the same payment in the batch is settled; a settle after it is not."""

    def hold(amount: int, ref: str) -> str:
        r = client.post(
            f"{API}/payments/authorize", json=authorize_body(fam, amount, ref), headers=inst
        )
        assert r.status_code == 201, r.text
        return str(r.json()["payment_id"])

    old = hold(30_000, "OLD")
    clock.advance(timedelta(hours=40))
    new, other = hold(20_000, "NEW"), hold(10_000, "OTHER")
    clock.advance(timedelta(hours=40))  # OLD is past the region's hold expiry, not yet released
    assert _account(rt, fam) == (100_000, 60_000)
    ops = [
        {"op": "settle", "payment_id": new, "amount_fen": 25_000},  # more than the hold
        {"op": "settle", "payment_id": new, "amount_fen": 15_000},
        {"op": "settle", "payment_id": new, "amount_fen": 15_000},
    ]
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=inst)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["code"] for x in res] == ["SETTLE_EXCEEDS_HOLD", None, "PAYMENT_ALREADY_RESOLVED"]
    assert (res[1]["status"], res[1]["settled_fen"]) == ("settled", 15_000)
    assert _account(rt, fam) == (85_000, 10_000)  # OLD released: only OTHER is held
    r = client.post(f"{API}/payments/{old}/void", headers=inst)
    assert (r.status_code, r.json()["code"]) == (409, "PAYMENT_EXPIRED")
    r = client.post(f"{API}/payments/{other}/void", headers=inst)
    assert r.status_code == 200 and _account(rt, fam) == (85_000, 0)


def test_a_batch_of_authorizations_counts_each_toward_the_next(
    rt: Runtime, client: TestClient, clock: FrozenClock, inst: dict[str, str]
) -> None:
    """In a batch of authorizations each one sees those before it: the link's yearly
    limit counts the batch's earlier holds, a reference used earlier in the batch is
    taken, and the account's overdue hold is let go of first (neither held nor
    counted toward the year)."""
    fam = make_family(rt, seq=7, yearly_limit_fen=50_000)
    fund(rt, fam.holder_id, 100_000)
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 10_000, "OLD"), headers=inst
    )
    assert r.status_code == 201, r.text
    old = r.json()["payment_id"]
    clock.advance(timedelta(hours=80))  # OLD is past the region's hold expiry
    ops = [
        {"op": "authorize", **authorize_body(fam, amount, ref)}
        for amount, ref in [
            (30_000, "B1"),
            (15_000, "B2"),
            (10_000, "B3"),  # 55,000 this year: over the limit
            (5_000, "B1"),  # the batch's own reference again
            (5_000, "B4"),  # 50,000: the limit exactly
        ]
    ]
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=inst)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["code"] for x in res] == [
        None,
        None,
        "MUTUAL_AID_UNAVAILABLE",  # the limit, told to an institution as a probe
        "PAYMENT_REFERENCE_EXISTS",
        None,
    ]
    assert _account(rt, fam) == (100_000, 50_000)  # OLD let go of: only the batch's holds
    r = client.post(f"{API}/payments/{old}/void", headers=inst)
    assert (r.status_code, r.json()["code"]) == (409, "PAYMENT_EXPIRED")


def test_batch_size_limit(client: TestClient, fam: Family, inst: dict[str, str]) -> None:
    ops = [{"op": "void", "payment_id": "x"}] * 1001
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=inst)
    assert r.status_code == 422
