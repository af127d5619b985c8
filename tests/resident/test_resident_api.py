"""POST /family/links/{id}/resident-contribution: every effect and every refusal, on
both databases. The test clock is 2026-11-23 (China time): inside the 2027 window."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.accounting.clearing import clear
from qinqing.audit.models import AuditEntry
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.accounts import resident_fund_code
from qinqing.ledger.models import LedgerSystemAccount, LedgerTransfer
from qinqing.notify.models import Notification
from qinqing.resident.models import ResidentContribution
from qinqing.runtime import Runtime
from support.family import new_person, set_status
from support.resident import API, assert_reconciled, balance_of, pay, resident_family


def transfers(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(LedgerTransfer)
                .where(LedgerTransfer.kind == "resident")
            ).scalar_one()
        )


def test_paying_in_the_window_debits_at_once_and_covers_from_1_january(
    rt: Runtime, client: TestClient
) -> None:
    made = resident_family(rt, client)
    r = pay(client, made)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "member", "year", "amount_fen", "cover_starts_on", "created_at"}
    assert body["year"] == 2027
    assert body["amount_fen"] == 40000  # the national individual standard, 400 元
    assert body["cover_starts_on"] == "2027-01-01"
    assert body["member"] == {"id": str(made.member_id), "name": made.member.name}
    # Debited at once, not held.
    assert balance_of(rt, made) == 60_000
    me = client.get(f"{API}/me", headers=made.holder_headers).json()
    assert (me["balance_fen"], me["available_fen"]) == (60_000, 60_000)
    assert_reconciled(rt)
    # Both parties are told, with the cover start.
    with rt.db.unit_of_work() as s:
        notes = {
            (n.person_id, n.kind): n.payload
            for n in s.execute(
                select(Notification).where(Notification.kind.like("resident.%"))
            ).scalars()
        }
        audit = s.execute(
            select(AuditEntry.action).where(AuditEntry.action == "resident.paid")
        ).all()
    assert notes[(made.holder_id, "resident.paid")]["cover_starts_on"] == "2027-01-01"
    assert notes[(made.member_id, "resident.paid_for_you")]["amount_fen"] == 40000
    assert len(audit) == 1


def test_the_clearing_step_remits_to_the_member_regions_resident_fund(
    rt: Runtime, client: TestClient
) -> None:
    made = resident_family(rt, client)
    assert pay(client, made).status_code == 201
    with rt.db.unit_of_work() as s:
        done = clear(s, rt.clock.now())
    assert done.resident_contributions == 1
    assert done.posted[resident_fund_code("150600")] == 40000
    with rt.db.unit_of_work() as s:
        fund = s.execute(
            select(LedgerSystemAccount).where(
                LedgerSystemAccount.code == resident_fund_code("150600")
            )
        ).scalar_one()
        assert (fund.kind, fund.balance_fen) == ("resident_fund", 40000)
        row = s.execute(select(ResidentContribution)).scalar_one()
        assert row.cleared_at is not None
    assert_reconciled(rt)
    # Cleared once: a second pass adds nothing.
    with rt.db.unit_of_work() as s:
        assert clear(s, rt.clock.now()).resident_contributions == 0
    assert_reconciled(rt)


def test_a_retry_with_the_same_key_replays_and_pays_once(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    first = pay(client, made, key="rc-1")
    again = pay(client, made, key="rc-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance_of(rt, made) == 60_000 and transfers(rt) == 1
    other = pay(client, made, year=2026, key="rc-1")
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_MISMATCH")


def test_a_year_is_paid_once_whoever_pays(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    assert pay(client, made).status_code == 201
    again = pay(client, made)
    assert (again.status_code, again.json()["code"]) == (409, "RESIDENT_ALREADY_PAID")
    # A second child of the same father: the year is already paid.
    sibling = resident_family(rt, client, member=made.member, relation="father")
    r = pay(client, sibling)
    assert (r.status_code, r.json()["code"]) == (409, "RESIDENT_ALREADY_PAID")
    assert balance_of(rt, sibling) == 100_000
    assert transfers(rt) == 1
    assert_reconciled(rt)


def test_a_member_outside_the_resident_scheme_is_refused(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client, member_scheme="employee", relation="spouse")
    r = pay(client, made)
    assert (r.status_code, r.json()["code"]) == (409, "MEMBER_NOT_RESIDENT")
    assert balance_of(rt, made) == 100_000


def test_late_in_the_cover_year_the_waiting_period_applies(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    made = resident_family(rt, client)
    clock.set(datetime(2027, 3, 1, 2, 0, tzinfo=UTC))  # 2027-03-01 in China
    from support.family import relogin

    r = pay(client, made, headers=relogin(client, made.holder))
    assert r.status_code == 201, r.text
    assert r.json()["cover_starts_on"] == "2027-05-30"  # + 90 days
    with rt.db.unit_of_work() as s:
        assert s.execute(select(ResidentContribution.late)).scalar_one() is True


def test_late_with_no_cover_left_in_the_year_is_closed(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    # 2026-11-23 + 90 days is in 2027: nothing of 2026 is left to buy.
    r = pay(client, made, year=2026)
    assert (r.status_code, r.json()["code"]) == (409, "ENROLLMENT_CLOSED")
    assert r.json()["closed_on"] == "2025-12-31"
    assert r.json()["cover_would_start"] == "2027-02-21"
    zh = pay(client, made, year=2026, headers={**made.holder_headers, "Accept-Language": "zh-CN"})
    assert "2027-02-21" in str(zh.json()) and "已超过本年度" in str(zh.json())


def test_years_too_far_ahead_or_behind_are_refused(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    for year in (2028, 2025):
        r = pay(client, made, year=year)
        assert (r.status_code, r.json()["code"]) == (422, "RESIDENT_YEAR_INVALID")
    bad = client.post(
        f"{API}/family/links/{made.link_id}/resident-contribution",
        headers=made.holder_headers,
        json={"year": "2027"},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR")
    assert balance_of(rt, made) == 100_000


def test_before_the_window_opens(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    made = resident_family(rt, client)
    clock.set(datetime(2026, 8, 1, 2, 0, tzinfo=UTC))
    from support.family import relogin

    r = pay(client, made, headers=relogin(client, made.holder))
    assert (r.status_code, r.json()["code"]) == (409, "ENROLLMENT_NOT_OPEN")
    assert r.json()["opens_on"] == "2026-09-01"


def test_the_holder_must_verify(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    r = pay(client, made, password=None)
    assert (r.status_code, r.json()["code"]) == (409, "VERIFICATION_REQUIRED")
    for _ in range(4):
        r = pay(client, made, password="000000")
        assert (r.status_code, r.json()["code"]) == (403, "VERIFICATION_FAILED")
    r = pay(client, made, password="000000")
    assert r.json()["code"] == "VERIFICATION_LOCKED"
    # Locked: even the right password is refused now, and nothing was paid.
    r = pay(client, made)
    assert (r.status_code, r.json()["code"]) == (423, "VERIFICATION_LOCKED")
    assert balance_of(rt, made) == 100_000 and transfers(rt) == 0


def test_face_verification_pays(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    r = client.post(
        f"{API}/family/links/{made.link_id}/resident-contribution",
        headers=made.holder_headers,
        json={
            "year": 2027,
            "verification": {"method": "face", "face_token": f"sim-ok:{made.holder_id}"},
        },
    )
    assert r.status_code == 201, r.text


def test_insufficient_balance(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client, funds_fen=39_999)
    r = pay(client, made)
    assert (r.status_code, r.json()["code"]) == (409, "INSUFFICIENT_BALANCE")
    assert balance_of(rt, made) == 39_999 and transfers(rt) == 0
    assert_reconciled(rt)


def test_holder_without_any_personal_account_money(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client, funds_fen=0)
    r = pay(client, made)
    assert (r.status_code, r.json()["code"]) == (409, "INSUFFICIENT_BALANCE")


def test_only_the_holder_of_an_active_mutual_aid_link_pays(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    r = pay(client, made, headers=made.member_headers)
    assert (r.status_code, r.json()["code"]) == (403, "RESIDENT_HOLDER_ONLY")
    stranger = new_person(rt, name="路人", client=client)
    r = pay(client, made, headers=stranger.headers)
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    plain = resident_family(rt, client, mutual_aid=False, relation="mother")
    r = pay(client, plain)
    assert (r.status_code, r.json()["code"]) == (409, "NO_MUTUAL_AID_LINK")


def test_the_holder_must_be_active(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    set_status(rt, made.holder_id, "arrears")
    r = pay(client, made)
    assert (r.status_code, r.json()["code"]) == (409, "PAYER_NOT_ACTIVE")


def test_an_unbind_never_undoes_a_paid_contribution(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    assert pay(client, made).status_code == 201
    r = client.post(
        f"{API}/family/links/{made.link_id}/unbind",
        headers=made.holder_headers,
        json={"verification": {"method": "payment_password", "payment_password": "135790"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status"] == "completed"
    # The money stays paid, the cover stays, the statement still shows it.
    assert balance_of(rt, made) == 60_000
    with rt.db.unit_of_work() as s:
        row = s.execute(select(ResidentContribution)).scalar_one()
        assert (row.year, row.amount_fen) == (2027, 40000)
    entries = client.get(f"{API}/me/account/entries", headers=made.holder_headers).json()
    assert [e["kind"] for e in entries["entries"]][:1] == ["resident_contribution"]
    mine = client.get(f"{API}/me/account/entries", headers=made.member_headers).json()
    assert [p["year"] for p in mine["resident_paid_for_me"]] == [2027]
    # No new payment on the ended link.
    r = pay(client, made, year=2026)
    assert (r.status_code, r.json()["code"]) == (409, "NO_MUTUAL_AID_LINK")
    assert_reconciled(rt)


def test_both_statements_show_it_with_the_cover_start(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    paid = pay(client, made).json()
    holder = client.get(f"{API}/me/account/entries", headers=made.holder_headers).json()
    line = holder["entries"][0]
    assert line["kind"] == "resident_contribution"
    assert line["amount_fen"] == -40000
    assert line["resident_contribution_id"] == paid["id"]
    assert (line["cover_year"], line["cover_starts_on"]) == (2027, "2027-01-01")
    assert line["member"] == {"id": str(made.member_id), "name": made.member.name}
    member = client.get(f"{API}/me/account/entries", headers=made.member_headers).json()
    assert member["has_personal_account"] is False
    assert member["resident_paid_for_me"] == [
        {
            "id": paid["id"],
            "year": 2027,
            "amount_fen": 40000,
            "paid_by": {"id": str(made.holder_id), "name": made.holder.name},
            "paid_at": paid["created_at"],
            "cover_starts_on": "2027-01-01",
        }
    ]
