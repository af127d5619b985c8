"""A transaction that loses a conflict is run again whole, then answered 503
RETRY_LATER with Retry-After — never 500 (both databases)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from qinqing.contributions import service as contributions
from qinqing.contributions.models import Contribution
from qinqing.entrypoints.app import create_app
from qinqing.kit import db as dbmod
from qinqing.kit.db import Database, RetryLater, conflict_of, on_citus
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.regions.models import Region
from qinqing.runtime import Runtime
from support.accounts import add_client, add_person
from support.client import AppClient

API = "/api/v1"


def deadlock() -> OperationalError:
    """What SQLAlchemy raises when PostgreSQL picks this transaction as a deadlock victim."""
    return OperationalError("INSERT ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def collector(rt: Runtime, client: TestClient) -> dict[str, str]:
    cid, secret = add_client(rt, "collector", "150600")
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def counts(rt: Runtime, person_id: Any) -> tuple[int, int | None]:
    with rt.db.unit_of_work() as s:
        n = s.execute(select(func.count()).select_from(Contribution)).scalar_one()
        balance = s.execute(
            select(LedgerAccount.balance_fen).where(LedgerAccount.code == personal_code(person_id))
        ).scalar_one_or_none()
        return int(n), balance


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """post_contribution does all its work, then loses a deadlock ``fail`` times."""
    state = {"calls": 0, "fail": 1}
    real = contributions.post_contribution

    def post(*args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        result = real(*args, **kwargs)
        if state["calls"] <= state["fail"]:
            raise deadlock()
        return result

    monkeypatch.setattr(contributions, "post_contribution", post)
    monkeypatch.setattr(dbmod, "backoff", lambda attempt: 0.0)
    yield state


def test_a_deadlocked_request_is_run_again_whole_and_applied_once(
    rt: Runtime, client: TestClient, flaky: dict[str, int]
) -> None:
    person, number = add_person(rt)
    headers = collector(rt, client)
    r = client.post(
        f"{API}/contributions",
        json={"id_number": number, "period": "2026-10", "base_fen": 500_000},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert flaky["calls"] == 2
    # The first attempt's writes were rolled back: one contribution, credited once.
    assert counts(rt, person.id) == (1, 10_000)
    assert rt.db.conflicts["40P01"] == 1


def test_a_request_that_keeps_losing_gets_503_retry_later(
    rt: Runtime, client: TestClient, flaky: dict[str, int]
) -> None:
    flaky["fail"] = 99
    person, number = add_person(rt)
    headers = collector(rt, client)
    body = {"id_number": number, "period": "2026-10", "base_fen": 500_000}
    r = client.post(f"{API}/contributions", json=body, headers=headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["Retry-After"] == "1"
    assert r.headers["X-Request-Id"]  # answered and logged like any other request
    problem = r.json()
    assert problem["code"] == "RETRY_LATER" and problem["status"] == 503
    assert problem["title"] == "系统繁忙，本次请求未被处理。"  # zh-CN by default
    assert flaky["calls"] == dbmod.MAX_ATTEMPTS
    assert counts(rt, person.id) == (0, None)  # nothing applied
    en = client.post(
        f"{API}/contributions", json=body, headers={**headers, "Accept-Language": "en"}
    ).json()
    assert en["title"] == "The service is busy and did not apply your request."
    assert "1 second" in en["detail"]
    assert rt.db.conflicts["40P01"] == 2 * dbmod.MAX_ATTEMPTS


def test_the_503_is_documented_in_openapi(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/v1/contributions"]["post"]
    assert "application/problem+json" in op["responses"]["503"]["content"]


def test_other_errors_are_not_retried(
    rt: Runtime, client: TestClient, flaky: dict[str, int]
) -> None:
    flaky["fail"] = 0
    headers = collector(rt, client)
    r = client.post(
        f"{API}/contributions",
        json={"id_number": add_person(rt)[1], "period": "2031-01", "base_fen": 1},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "PERIOD_INVALID"
    assert flaky["calls"] == 1
    assert sum(rt.db.conflicts.values()) == 0


# --- Database.run: the same for the CLI and the worker ------------------------------


def test_run_repeats_the_whole_unit_and_gives_up_with_retry_later(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbmod, "backoff", lambda attempt: 0.0)
    seen: list[str] = []

    def rename(session: Session) -> str:
        region = session.get_one(Region, "150600")
        seen.append(region.name)  # a read: must see the state before attempt 1's write
        region.name = region.name + "!"
        session.flush()
        if len(seen) < 3:
            raise deadlock()
        return region.name

    assert rt.db.run(rename) == seen[0] + "!"
    assert len(set(seen)) == 1  # every attempt read the original, not a half-done one

    def always(session: Session) -> None:
        raise deadlock()

    with pytest.raises(RetryLater) as info:
        rt.db.run(always)
    assert info.value.code == "RETRY_LATER" and info.value.status == 503


# --- real conflicts -------------------------------------------------------------------


def test_sqlite_busy_is_a_503_then_succeeds(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    if not rt.db.is_sqlite:
        pytest.skip("SQLITE_BUSY is an SQLite matter")
    monkeypatch.setattr(dbmod, "backoff", lambda attempt: 0.0)
    person, number = add_person(rt)
    rt.db.dispose()
    rt.db = Database(rt.db.url, busy_timeout_ms=20)
    rt.db.sessions.configure(info={"vault": rt.vault})  # as build_runtime does
    path = rt.db.url.split("sqlite:///", 1)[1]
    with AppClient(create_app(rt), raise_server_exceptions=False) as client:
        headers = collector(rt, client)
        body = {"id_number": number, "period": "2026-10", "base_fen": 500_000}
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            r = client.post(f"{API}/contributions", json=body, headers=headers)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert r.status_code == 503 and r.json()["code"] == "RETRY_LATER"
        assert r.headers["Retry-After"] == "1"
        # Busy comes after busy_timeout already waited: one more try, then 503.
        assert rt.db.conflicts["sqlite_busy"] == dbmod.SQLITE_BUSY_ATTEMPTS == 2
        assert client.post(f"{API}/contributions", json=body, headers=headers).status_code == 201
    assert counts(rt, person.id) == (1, 10_000)


def test_a_real_postgresql_deadlock_is_recognised(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("deadlock detection is a PostgreSQL matter")
    if on_citus(rt.db):
        # Two locks on rows of a reference table wait on every node; Citus's own
        # distributed detector resolves that, not PostgreSQL's, on its own schedule.
        pytest.skip("a deadlock on reference-table rows is Citus's distributed detector's")
    engine = rt.db.engine
    ready = threading.Barrier(2)
    errors: list[BaseException] = []

    def lock_both(first: str, second: str) -> None:
        try:
            with engine.begin() as conn:
                lock = "SELECT code FROM regions WHERE code = :c FOR NO KEY UPDATE"
                conn.execute(text(lock), {"c": first})
                ready.wait()
                conn.execute(text(lock), {"c": second})
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=lock_both, args=pair)
        for pair in (("150600", "440100"), ("440100", "150600"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 1  # PostgreSQL aborted exactly one of the two
    assert conflict_of(errors[0]) == "40P01"
    assert conflict_of(ValueError("no")) is None


def test_a_connection_the_server_dropped_is_replaced_not_a_500(
    rt: Runtime, client: TestClient
) -> None:
    """No ping before each checkout: when PostgreSQL drops the pooled connections
    (a restart, a failover), the next request fails on its first statement and is
    run again on a fresh connection, answering as if nothing happened."""
    if rt.db.is_sqlite:
        pytest.skip("SQLite has no server to drop a connection")
    person, number = add_person(rt)
    headers = collector(rt, client)
    body = {"id_number": number, "period": "2026-09", "base_fen": 500000}
    with rt.db.engine.connect() as conn:
        pids = [conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()]
    # Every connection the pool holds, checked out at once so each shows its pid.
    held = [rt.db.engine.connect() for _ in range(3)]
    pids += [c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in held]
    for c in held:
        c.close()
    admin = dbmod.make_engine(rt.db.url, pool_size=1)
    with admin.connect() as conn:
        for pid in set(pids):
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    admin.dispose()
    r = client.post(f"{API}/contributions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert counts(rt, person.id)[0] == 1
