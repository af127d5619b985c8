"""The single-payment fast path as an institution meets it, on both databases (SQLite
has no fast path: there these are the ordinary route's answers, which the fast
path must equal): a revoked token or disabled client is refused at once even
while its principal is cached, keyed retries replay, a refused keyed request can
be retried, and a warm (fast lane) answer is the cold (route) answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from qinqing.accounting.reconcile import reconcile
from qinqing.auth.models import AccessToken, ApiClient
from qinqing.auth.tokens import token_digest
from qinqing.ledger.models import LedgerAccount
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from support.ledger import API, Family, authorize_body, fund, institution_headers, make_family


@pytest.fixture
def fam(rt: Runtime) -> Family:
    f = make_family(rt)
    fund(rt, f.holder_id, 10_000)
    return f


@pytest.fixture
def inst(rt: Runtime, client: TestClient) -> dict[str, str]:
    return institution_headers(rt, client)


@pytest.fixture(autouse=True)
def _reconciles(rt: Runtime) -> Iterator[None]:
    yield
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


def _fast(client: TestClient) -> FastPath | None:
    fast: FastPath | None = client.app.state.fast_payments  # type: ignore[attr-defined]
    return fast


def _forget_principals(client: TestClient) -> None:
    """Make the next request a cold one (it goes through the route, not the lane)."""
    fast = _fast(client)
    if fast is not None:
        fast.principals = type(fast.principals)()


def _held(rt: Runtime, fam: Family) -> tuple[int, int]:
    with rt.db.unit_of_work() as s:
        row = s.execute(
            select(LedgerAccount.balance_fen, LedgerAccount.held_fen).where(
                LedgerAccount.person_id == fam.holder_id
            )
        ).one()
        return row[0], row[1]


def _authorize(
    client: TestClient, headers: dict[str, str], fam: Family, amount: int, ref: str
) -> Any:
    return client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, amount, ref), headers=headers
    )


def test_postgresql_and_citus_take_the_fast_path_and_sqlite_does_not(
    rt: Runtime,
    client: TestClient,
    fam: Family,
    inst: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = _fast(client)
    if not rt.db.url.startswith("postgresql"):
        assert fast is None
        assert _authorize(client, inst, fam, 100, "S1").status_code == 201
        return
    assert fast is not None
    calls: list[str] = []
    original = FastPath._call

    async def counting(self: FastPath, *args: Any, **kwargs: Any) -> Any:
        calls.append(args[1].split("(")[0])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(FastPath, "_call", counting)
    p = _authorize(client, inst, fam, 100, "F1").json()
    client.post(f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 100}, headers=inst)
    q = _authorize(client, inst, fam, 100, "F2").json()
    client.post(f"{API}/payments/{q['payment_id']}/void", headers=inst)
    assert len(calls) == 4
    assert _held(rt, fam) == (9_900, 0)


def test_the_fast_path_stays_off_until_every_function_is_installed(rt: Runtime) -> None:
    """A schema not migrated to the code's head (one function missing) keeps every
    payment on the ORM path instead of failing the calls the function would take."""
    if FastPath.for_runtime(rt) is None:
        pytest.skip("the fast path is PostgreSQL's (SQLite has no stored functions)")
    with rt.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "ALTER FUNCTION qinqing_payment_authorize_voucher RENAME TO qq_put_aside"
        )
    try:
        assert FastPath.for_runtime(rt) is None
    finally:
        with rt.db.engine.begin() as conn:
            conn.exec_driver_sql(
                "ALTER FUNCTION qq_put_aside RENAME TO qinqing_payment_authorize_voucher"
            )
    assert FastPath.for_runtime(rt) is not None


@pytest.mark.parametrize("how", ["token revoked", "client disabled"])
def test_a_revoked_token_or_disabled_client_is_refused_at_once(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str], how: str
) -> None:
    assert _authorize(client, inst, fam, 1_000, "R1").status_code == 201  # principal cached
    digest = token_digest(inst["Authorization"].removeprefix("Bearer "))
    with rt.db.unit_of_work() as s:
        if how == "token revoked":
            s.execute(
                update(AccessToken)
                .where(AccessToken.token_hash == digest)
                .values(revoked_at=rt.clock.now())
            )
        else:
            client_id = s.execute(
                select(AccessToken.subject_id).where(AccessToken.token_hash == digest)
            ).scalar_one()
            s.execute(update(ApiClient).where(ApiClient.id == client_id).values(disabled=True))
    r = _authorize(client, inst, fam, 1_000, "R2")
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert _held(rt, fam) == (10_000, 1_000)  # the refused hold was not placed


def test_a_warm_answer_is_the_cold_answer(
    client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    def both(call: Any) -> list[Any]:
        out = []
        for _ in range(2):  # cold (the route fills the cache), then warm (the lane)
            r = call()
            out.append((r.status_code, r.headers["content-type"], r.json()))
        _forget_principals(client)
        return out

    _forget_principals(client)
    # A refusal: a problem document in the caller's language.
    cold, warm = both(
        lambda: client.post(
            f"{API}/payments/authorize",
            json=authorize_body(fam, 50_000, "BIG"),
            headers={**inst, "Accept-Language": "zh-CN"},
        )
    )
    # (By bare ID numbers, a short balance is told as any refusal about the persons.)
    assert cold == warm and cold[0] == 409 and cold[2]["code"] == "MUTUAL_AID_UNAVAILABLE"
    assert cold[1].startswith("application/problem+json")
    # An unknown payment.
    missing = "00000000-0000-4000-8000-000000000000"
    cold, warm = both(lambda: client.post(f"{API}/payments/{missing}/void", headers=inst))
    assert cold == warm and cold[0] == 404 and cold[2]["code"] == "PAYMENT_NOT_FOUND"
    # A settle more than held.
    p = _authorize(client, inst, fam, 500, "S-1").json()
    cold, warm = both(
        lambda: client.post(
            f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 501}, headers=inst
        )
    )
    assert cold == warm and cold[0] == 422 and cold[2]["code"] == "SETTLE_EXCEEDS_HOLD"


def test_keyed_settle_and_void_replay_and_a_refused_keyed_request_can_be_retried(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    keyed = {**inst, "Idempotency-Key": "bill-9-auth"}
    refused = _authorize(client, keyed, fam, 12_000, "K9")
    assert refused.status_code == 409 and refused.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    fund(rt, fam.holder_id, 5_000)
    # The refusal did not keep the key: the same retry now succeeds, and then replays.
    first = _authorize(client, keyed, fam, 12_000, "K9")
    again = _authorize(client, keyed, fam, 12_000, "K9")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    pid = first.json()["payment_id"]
    settle_h = {**inst, "Idempotency-Key": "bill-9-settle"}
    url = f"{API}/payments/{pid}/settle"
    s1 = client.post(url, json={"amount_fen": 11_000}, headers=settle_h)
    s2 = client.post(url, json={"amount_fen": 11_000}, headers=settle_h)
    assert s1.status_code == s2.status_code == 200 and s1.json() == s2.json()
    assert s1.json()["released_fen"] == 1_000 and s2.headers["Idempotent-Replayed"] == "true"
    other = client.post(url, json={"amount_fen": 10_000}, headers=settle_h)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_MISMATCH"
    # A void of the settled payment is refused, and a refused void keeps no key.
    void_h = {**inst, "Idempotency-Key": "bill-9-void"}
    for _ in range(2):
        v = client.post(f"{API}/payments/{pid}/void", headers=void_h)
        assert v.status_code == 409 and v.json()["code"] == "PAYMENT_ALREADY_RESOLVED"
        assert "Idempotent-Replayed" not in v.headers
    assert _held(rt, fam) == (15_000 - 11_000, 0)


def test_a_pool_busy_with_work_answers_retry_later_not_unavailable(
    rt: Runtime, client: TestClient, fam: Family, inst: dict[str, str]
) -> None:
    """Every fast-path connection out at work for longer than the pool's wait: the
    database is there but slow, so 503 RETRY_LATER with Retry-After (not
    DATABASE_UNAVAILABLE, which is for a database that cannot be reached)."""
    fast = _fast(client)
    if fast is None:
        pytest.skip("the fast path's pool is PostgreSQL's (not SQLite, not a Citus coordinator)")
    assert _authorize(client, inst, fam, 100, "P1").status_code == 201  # pool open, cached
    portal = client.portal  # type: ignore[attr-defined]
    pool = portal.call(fast._pool)
    held = [portal.call(pool.getconn) for _ in range(fast.pool_size)]
    fast._in_use += len(held)  # as if each were inside a call
    try:
        r = _authorize(client, inst, fam, 100, "P2")
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "RETRY_LATER" and r.headers["retry-after"]
    finally:
        fast._in_use -= len(held)
        for conn in held:
            portal.call(pool.putconn, conn)
    assert _authorize(client, inst, fam, 100, "P3").status_code == 201
    assert _held(rt, fam) == (10_000, 200)
