"""Contributions on both databases (SPEC §3, §5): a collector posts a month, an
employee's personal account is credited through the ledger, closing a month marks
arrears and posting the missing months restores `active`."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from qinqing.access.principal import Principal
from qinqing.accounting.clearing import clear
from qinqing.accounting.reconcile import reconcile
from qinqing.audit.models import AuditEntry
from qinqing.contributions.models import Contribution, MonthClosing
from qinqing.contributions.service import close_month, post_contribution
from qinqing.entrypoints.cli import app as cli_app
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.ledger.accounts import funding_code, personal_code
from qinqing.ledger.models import LedgerAccount, LedgerEntry, LedgerSystemAccount, LedgerTransfer
from qinqing.notify.models import Notification
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from support.accounts import OPERATOR, add_client, add_person, id_number, login, register

API = "/api/v1"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the FrozenClock's start


def token(client: TestClient, client_id: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def collector(rt: Runtime, client: TestClient, region: str = "150600") -> dict[str, str]:
    return token(client, *add_client(rt, "collector", region))


def post(
    client: TestClient,
    headers: dict[str, str],
    number: str,
    period: str,
    base_fen: int = 500000,
) -> Any:
    return client.post(
        f"{API}/contributions",
        json={"id_number": number, "period": period, "base_fen": base_fen},
        headers=headers,
    )


def balance(rt: Runtime, code: str) -> int | None:
    """The account's balance as the ledger's entries say it (None: no account). A
    funding account is read after the clearing step has posted what is pending."""
    with rt.db.unit_of_work() as s:
        acct: LedgerAccount | LedgerSystemAccount | None = s.execute(
            select(LedgerAccount).where(LedgerAccount.code == code)
        ).scalar_one_or_none()
        if acct is None:
            clear(s, rt.clock.now())
            acct = s.execute(
                select(LedgerSystemAccount).where(LedgerSystemAccount.code == code)
            ).scalar_one_or_none()
        if acct is None:
            return None
        total = s.execute(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.account_id == acct.id
            )
        ).scalar_one()
        assert acct.balance_fen == total
        return int(total)


def status_of(rt: Runtime, person_id: uuid.UUID) -> str:
    with rt.db.unit_of_work() as s:
        return s.get_one(Person, person_id).status


def assert_reconciles(rt: Runtime) -> None:
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


# --- posting -----------------------------------------------------------------------


def test_post_credits_the_employee_personal_account(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt, scheme="employee")
    headers = collector(rt, client)
    r = post(client, headers, number, "2026-10", 500000)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["person_id"] == str(person.id) and body["period"] == "2026-10"
    # 500000 inside 338500..1692300; personal 80+20+5 ‰, employer 160+80+5+4 ‰.
    assert body["clamped_base_fen"] == 500000
    assert body["personal_total_fen"] == 52500  # 40000 + 10000 + 2500
    assert body["employer_total_fen"] == 124500  # 80000 + 40000 + 2500 + 2000
    assert body["credited_fen"] == 10000  # the personal medical 20‰, all of it
    assert body["person_status"] == "active"
    assert number not in r.text

    assert balance(rt, personal_code(person.id)) == 10000
    assert balance(rt, funding_code("150600")) == -10000
    assert_reconciles(rt)
    with rt.db.unit_of_work() as s:
        c = s.execute(select(Contribution)).scalar_one()
        assert str(c.id) == body["contribution_id"] and c.base_fen == 500000
        transfer = s.execute(select(LedgerTransfer)).scalar_one()
        assert transfer.contribution_id == c.id and transfer.kind == "contribution"
        entry = s.execute(
            select(AuditEntry).where(AuditEntry.action == "contribution.posted")
        ).scalar_one()
        assert entry.channel == "collector" and entry.subject_id == str(c.id)
        assert entry.details["credited_fen"] == 10000
        assert number not in json.dumps(entry.details, ensure_ascii=False)


def test_the_base_is_clamped_when_posting(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt)
    headers = collector(rt, client)
    low = post(client, headers, number, "2026-09", 200000).json()
    # 200000 → the floor 338500: personal 27080 + 6770 + 1693, employer 54160 + 27080 + 1693 + 1354
    assert low["clamped_base_fen"] == 338500
    assert (low["personal_total_fen"], low["employer_total_fen"]) == (35543, 84287)
    assert low["credited_fen"] == 6770  # 338500 × 20‰
    high = post(client, headers, number, "2026-10", 2000000).json()
    # 2000000 → the ceiling 1692300: medical 20‰ = 33846
    assert high["clamped_base_fen"] == 1692300 and high["credited_fen"] == 33846
    assert balance(rt, personal_code(person.id)) == 6770 + 33846
    assert_reconciles(rt)


def test_a_second_post_for_the_same_month_is_409(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt)
    headers = collector(rt, client)
    first = post(client, headers, number, "2026-10")
    assert first.status_code == 201
    again = post(client, headers, number, "2026-10", 900000)
    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "CONTRIBUTION_EXISTS"
    assert problem["contribution_id"] == first.json()["contribution_id"]
    assert number not in again.text
    assert balance(rt, personal_code(person.id)) == 10000
    assert post(client, headers, number, "2026-11").status_code == 201
    assert balance(rt, personal_code(person.id)) == 20000
    assert_reconciles(rt)


@pytest.mark.parametrize("scheme", ["flexible", "resident"])
def test_non_employees_are_recorded_but_not_credited(
    rt: Runtime, client: TestClient, scheme: str
) -> None:
    person, number = add_person(rt, scheme=scheme)
    r = post(client, collector(rt, client), number, "2026-10")
    assert r.status_code == 201, r.text
    assert r.json()["credited_fen"] == 0
    assert r.json()["personal_total_fen"] == 52500
    assert balance(rt, personal_code(person.id)) is None  # no personal account at all
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(LedgerTransfer)).scalar_one() == 0
        assert s.execute(select(Contribution.credited_fen)).scalar_one() == 0
    assert_reconciles(rt)


def test_a_collector_of_another_region_is_refused(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, region="150600")
    r = post(client, collector(rt, client, region="440100"), number, "2026-10")
    # As for an unknown number (tests/api/test_existence_oracles.py).
    assert r.status_code == 404
    assert r.json()["code"] == "PERSON_NOT_FOUND"
    assert number not in r.text
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(Contribution)).scalar_one() == 0


def test_unknown_and_invalid_id_numbers(rt: Runtime, client: TestClient) -> None:
    headers = collector(rt, client)
    unknown = id_number(seq=77)
    r = post(client, headers, unknown, "2026-10")
    assert r.status_code == 404 and r.json()["code"] == "PERSON_NOT_FOUND"
    assert unknown not in r.text
    wrong = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")
    r = post(client, headers, wrong, "2026-10")
    assert r.status_code == 422 and r.json()["code"] == "ID_NUMBER_CHECK_DIGIT"
    assert wrong not in r.text


@pytest.mark.parametrize(
    "period", ["2026-12", "2027-01", "2026-13", "2026-00", "202610", "1998-12", "26-10", ""]
)
def test_invalid_periods(rt: Runtime, client: TestClient, period: str) -> None:
    _, number = add_person(rt)
    r = post(client, collector(rt, client), number, period)
    assert r.status_code == 422
    assert r.json()["code"] in ("PERIOD_INVALID", "VALIDATION_ERROR")
    if period:
        assert r.json()["code"] == "PERIOD_INVALID"


def test_the_current_month_follows_china_time(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, number = add_person(rt)
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600  # outlives the clock moves
    headers = collector(rt, client)
    assert post(client, headers, number, "2026-11").status_code == 201  # the current month
    # 2026-11-30 16:30 UTC is already 2026-12-01 00:30 in Beijing.
    clock.set(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    assert post(client, headers, number, "2026-12").json()["code"] == "PERIOD_INVALID"
    clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    assert post(client, headers, number, "2026-12").status_code == 201


def test_base_must_be_a_non_negative_integer(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt)
    headers = collector(rt, client)
    for base in (-1, 10**11 + 1, 1.5, "500000", True):
        r = client.post(
            f"{API}/contributions",
            json={"id_number": number, "period": "2026-10", "base_fen": base},
            headers=headers,
        )
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR", base


def test_only_collectors_may_post(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, phone="13800138000")
    assert post(client, {}, number, "2026-10").status_code == 401
    institution = token(client, *add_client(rt, "institution"))
    r = post(client, institution, number, "2026-10")
    assert r.status_code == 403 and r.json()["code"] == "INSUFFICIENT_SCOPE"
    register(client, number, "张三", "13800138000")
    r = post(client, login(client, "13800138000"), number, "2026-10")
    assert r.status_code == 403 and r.json()["code"] == "INSUFFICIENT_SCOPE"


def test_idempotency_key_replays_the_first_answer(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt)
    headers = {**collector(rt, client), "Idempotency-Key": "collect-2026-10-0001"}
    first = post(client, headers, number, "2026-10")
    assert first.status_code == 201
    again = post(client, headers, number, "2026-10")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = post(client, headers, number, "2026-09")
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_MISMATCH"
    assert balance(rt, personal_code(person.id)) == 10000


def test_concurrent_posts_for_one_month_credit_once(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt)
    client_id, _ = add_client(rt, "collector")
    principal = Principal(
        "client",
        client_id,
        "collector",
        "-",
        region_code="150600",
        scopes=frozenset({"contributions"}),
        role="collector",
    )
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            with rt.db.unit_of_work() as s:
                post_contribution(
                    s, rt, principal, id_number=number, period="2026-10", base_fen=500000
                )
            outcomes.append("posted")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["CONTRIBUTION_EXISTS"] * 3 + ["posted"]
    assert balance(rt, personal_code(person.id)) == 10000
    assert_reconciles(rt)


# --- closing a month ---------------------------------------------------------------


def _people(rt: Runtime, clock: FrozenClock) -> dict[str, uuid.UUID]:
    """Persons created at known times; the clock ends back at NOW."""
    made: dict[str, uuid.UUID] = {}
    spec: list[tuple[str, datetime, dict[str, Any]]] = [
        ("employee", datetime(2026, 8, 3, tzinfo=UTC), {}),
        ("paid", datetime(2026, 8, 3, tzinfo=UTC), {}),
        ("flexible", datetime(2026, 8, 3, tzinfo=UTC), {"scheme": "flexible"}),
        ("resident", datetime(2026, 8, 3, tzinfo=UTC), {"scheme": "resident"}),
        ("suspended", datetime(2026, 8, 3, tzinfo=UTC), {"status": "suspended"}),
        ("guangzhou", datetime(2026, 8, 3, tzinfo=UTC), {"region": "440100"}),
        # 2026-10-31 15:30 UTC is still October in Beijing (23:30).
        ("late_october", datetime(2026, 10, 31, 15, 30, tzinfo=UTC), {}),
        # 2026-10-31 16:30 UTC is 2026-11-01 00:30 in Beijing: created after October.
        ("november", datetime(2026, 10, 31, 16, 30, tzinfo=UTC), {}),
    ]
    for seq, (name, at, kw) in enumerate(spec, start=1):
        clock.set(at)
        person, _ = add_person(rt, seq=seq, name=name, phone=None, **kw)
        made[name] = person.id
    clock.set(NOW)
    return made


def _number(seq: int) -> str:
    return id_number(seq=seq)


def test_close_month_marks_only_active_monthly_payers_without_that_month(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    ids = _people(rt, clock)
    headers = collector(rt, client)
    assert post(client, headers, _number(2), "2026-10").status_code == 201  # "paid"

    with rt.db.unit_of_work() as s:
        closings = close_month(s, rt, "2026-10", OPERATOR)
    by_region = {c.region_code: c.marked_arrears for c in closings}
    assert by_region["150600"] == 3  # employee, flexible, late_october
    assert by_region["440100"] == 1  # guangzhou
    assert set(by_region) == {info.code for info in rt.policies.regions()}
    assert sum(by_region.values()) == 4

    expected = {
        "employee": "arrears",
        "paid": "active",
        "flexible": "arrears",
        "resident": "active",  # residents pay yearly
        "suspended": "suspended",
        "guangzhou": "arrears",
        "late_october": "arrears",
        "november": "active",  # created after October ended
    }
    assert {name: status_of(rt, pid) for name, pid in ids.items()} == expected
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(MonthClosing).where(MonthClosing.period == "2026-10")).scalars()
        assert {r.region_code: r.marked_arrears for r in rows} == by_region
        audits = (
            s.execute(select(AuditEntry).where(AuditEntry.action == "contributions.close_month"))
            .scalars()
            .all()
        )
        assert {a.subject_id: a.details["marked_arrears"] for a in audits} == by_region
        assert {a.channel for a in audits} == {"admin"}

    # Paying the missing month restores `active`, with an audit entry and a notice.
    r = post(client, headers, _number(1), "2026-10")
    assert r.status_code == 201 and r.json()["person_status"] == "active"
    assert status_of(rt, ids["employee"]) == "active"
    r = post(client, headers, _number(3), "2026-10")  # flexible: restored, nothing credited
    assert r.json()["person_status"] == "active" and r.json()["credited_fen"] == 0
    with rt.db.unit_of_work() as s:
        changes = (
            s.execute(select(AuditEntry).where(AuditEntry.action == "person.status"))
            .scalars()
            .all()
        )
        assert {c.subject_id for c in changes} == {str(ids["employee"]), str(ids["flexible"])}
        assert all(c.details["to"] == "active" for c in changes)
        notes = (
            s.execute(
                select(Notification).where(Notification.kind == "contribution.arrears_cleared")
            )
            .scalars()
            .all()
        )
        assert {n.person_id for n in notes} == {ids["employee"], ids["flexible"]}
    assert_reconciles(rt)


def test_every_missing_month_must_be_paid(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    ids = _people(rt, clock)
    headers = collector(rt, client)
    with rt.db.unit_of_work() as s:
        # July ended before these persons were created: it marks no one here and
        # never counts as one of their missing months.
        assert {c.region_code: c.marked_arrears for c in close_month(s, rt, "2026-07", OPERATOR)}[
            "150600"
        ] == 0
        close_month(s, rt, "2026-09", OPERATOR)
    with rt.db.unit_of_work() as s:
        close_month(s, rt, "2026-10", OPERATOR)
    assert status_of(rt, ids["employee"]) == "arrears"

    r = post(client, headers, _number(1), "2026-10")
    assert r.json()["person_status"] == "arrears"  # September is still missing
    assert status_of(rt, ids["employee"]) == "arrears"
    r = post(client, headers, _number(1), "2026-09")
    assert r.json()["person_status"] == "active"
    assert status_of(rt, ids["employee"]) == "active"

    # "late_october" was created in October: September is not theirs to pay.
    assert status_of(rt, ids["late_october"]) == "arrears"
    assert post(client, headers, _number(7), "2026-10").json()["person_status"] == "active"

    # A contribution for a month that is not missing leaves an arrears person in arrears.
    assert post(client, headers, _number(3), "2026-11").json()["person_status"] == "arrears"
    assert_reconciles(rt)


def test_closing_a_month_twice_is_refused_and_changes_nothing(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    ids = _people(rt, clock)
    with rt.db.unit_of_work() as s:
        close_month(s, rt, "2026-10", OPERATOR)
    # The person pays late; a second closing must not mark them again or recount.
    post(client, collector(rt, client), _number(1), "2026-10")
    assert status_of(rt, ids["employee"]) == "active"
    with rt.db.unit_of_work() as s:
        before = s.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    with pytest.raises(DomainError) as refused, rt.db.unit_of_work() as s:
        close_month(s, rt, "2026-10", OPERATOR)
    assert refused.value.code == "PERIOD_ALREADY_CLOSED" and refused.value.status == 409
    assert status_of(rt, ids["employee"]) == "active"
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == before
        assert s.execute(select(func.count()).select_from(MonthClosing)).scalar_one() == len(
            rt.policies.regions()
        )


def test_a_month_that_has_not_ended_cannot_be_closed(rt: Runtime, clock: FrozenClock) -> None:
    for period, code in [
        ("2026-11", "PERIOD_NOT_ENDED"),
        ("2027-01", "PERIOD_NOT_ENDED"),
        ("2026-13", "PERIOD_INVALID"),
        ("Oct-2026", "PERIOD_INVALID"),
        ("1998-12", "PERIOD_INVALID"),
    ]:
        with pytest.raises(DomainError) as refused, rt.db.unit_of_work() as s:
            close_month(s, rt, period, OPERATOR)
        assert refused.value.code == code, period
    # October ends at 2026-11-01 00:00 Beijing time = 2026-10-31 16:00 UTC.
    clock.set(datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC))
    with pytest.raises(DomainError) as refused, rt.db.unit_of_work() as s:
        close_month(s, rt, "2026-10", OPERATOR)
    assert refused.value.code == "PERIOD_NOT_ENDED"
    clock.set(datetime(2026, 10, 31, 16, 0, tzinfo=UTC))
    with rt.db.unit_of_work() as s:
        assert close_month(s, rt, "2026-10", OPERATOR)
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(MonthClosing)).scalar_one() > 0


# --- the command line ----------------------------------------------------------------


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }


def test_cli_close_month(rt: Runtime, clock: FrozenClock) -> None:
    # The CLI runs on the system clock: use months long past.
    for seq, scheme in enumerate(["employee", "flexible", "resident"], start=1):
        clock.set(datetime(2019, 12, 5, tzinfo=UTC))
        add_person(rt, seq=seq, scheme=scheme, phone=None)
    runner = CliRunner()
    r = runner.invoke(cli_app, ["contributions", "close-month", "2020-01", "--json"], env=_env(rt))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["period"] == "2020-01"
    counts = {x["region_code"]: x["marked_arrears"] for x in out["regions"]}
    assert counts["150600"] == 2 and sum(counts.values()) == 2

    r = runner.invoke(cli_app, ["contributions", "close-month", "2020-01"], env=_env(rt))
    assert r.exit_code == 1
    assert "PERIOD_ALREADY_CLOSED" in r.output

    r = runner.invoke(cli_app, ["contributions", "close-month", "2020-02"], env=_env(rt))
    assert r.exit_code == 0, r.output
    assert "150600" in r.stdout and "鄂尔多斯市" in r.stdout
    assert "0 person(s) marked" in r.stdout  # already in arrears: not marked twice

    for bad in ("2999-01", "2020-1"):
        r = runner.invoke(cli_app, ["contributions", "close-month", bad], env=_env(rt))
        assert r.exit_code == 1
        assert "PERIOD_NOT_ENDED" in r.output or "PERIOD_INVALID" in r.output

    with rt.db.unit_of_work() as s:
        audits = (
            s.execute(select(AuditEntry).where(AuditEntry.action == "contributions.close_month"))
            .scalars()
            .all()
        )
        assert audits and {(a.actor_kind, a.channel) for a in audits} == {("operator", "admin")}
