"""医保关联: a person or a bank links, lists and unlinks bank accounts (both databases)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from qinqing.audit.models import AuditEntry
from qinqing.banks.delivery import deliver_webhooks
from qinqing.banks.models import BankAccountIndex, BankLink
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.banks import API, add_bank, card_number, link_customer
from support.family import new_person

EN = {"Accept-Language": "en"}


def test_a_person_links_lists_and_unlinks_an_account(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    me = new_person(rt, name="王芳", client=client)
    account = card_number(1)
    r = client.post(
        f"{API}/bank-links",
        headers=me.headers,
        json={"account_number": account[:4] + " " + account[4:], "bank_code": "BANKA"},
    )
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["bank_code"] == "BANKA" and out["status"] == "pending"
    assert out["awaiting"] == "bank"
    assert out["account_number_masked"] == account[:4] + "********" + account[-4:]
    assert account not in r.text and me.id_number not in r.text
    assert out["created_channel"] == "app"
    # The person cannot confirm it: the bank checks the account is theirs.
    r = client.post(f"{API}/bank-links/{out['id']}/confirm", headers=me.headers, json={})
    assert r.status_code == 409 and r.json()["code"] == "BANK_LINK_AWAITS_BANK"
    r = client.post(f"{API}/bank-links/{out['id']}/confirm", headers=bank.headers, json={})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["awaiting"] is None

    listing = client.get(f"{API}/bank-links", headers=me.headers).json()
    assert [i["id"] for i in listing["items"]] == [out["id"]] and listing["total"] == 1

    r = client.delete(f"{API}/bank-links/{out['id']}", headers=me.headers)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "ended" and ended["ended_by_kind"] == "person"
    assert ended["ended_channel"] == "app" and ended["ended_at"]
    # Kept, not deleted; a second unlink is refused clearly.
    r = client.delete(f"{API}/bank-links/{out['id']}", headers={**me.headers, **EN})
    assert r.status_code == 409 and r.json()["code"] == "BANK_LINK_ENDED"
    assert client.get(f"{API}/bank-links?status=ended", headers=me.headers).json()["total"] == 1
    assert client.get(f"{API}/bank-links?status=active", headers=me.headers).json()["total"] == 0
    # Once unlinked the account may be linked again.
    r = client.post(
        f"{API}/bank-links",
        headers=me.headers,
        json={"account_number": account, "bank_code": "BANKA"},
    )
    assert r.status_code == 202, r.text


def test_a_bank_links_its_customer_by_id_number_and_name(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    customer = new_person(rt, name="赵敏", account=False)
    account = card_number(2)
    r = link_customer(client, bank, customer.id_number, "赵敏", account)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["bank_code"] == "BANKA" and out["created_channel"] == "bank"
    assert out["status"] == "pending" and out["awaiting"] == "person"
    assert out["id_number_masked"] == customer.id_number[:6] + "********" + customer.id_number[-4:]
    # The person is asked to confirm, then told the link is in force.
    with rt.db.unit_of_work() as s:
        kinds = (
            s.execute(
                select(Notification.kind)
                .where(Notification.person_id == customer.id)
                .order_by(Notification.created_at, Notification.kind.desc())
            )
            .scalars()
            .all()
        )
    assert kinds == ["bank_link.pending", "bank_link.created"]

    r = link_customer(client, bank, "123", "赵敏", card_number(3))
    assert r.status_code == 422 and r.json()["code"].startswith("ID_NUMBER")
    r = client.post(
        f"{API}/bank-links", headers=bank.headers, json={"account_number": card_number(3)}
    )
    assert r.status_code == 422 and r.json()["code"] == "CUSTOMER_REQUIRED"
    r = client.post(
        f"{API}/bank-links",
        headers=bank.headers,
        json={
            "account_number": card_number(3),
            "id_number": customer.id_number,
            "name": "赵敏",
            "bank_code": "OTHERBANK",
        },
    )
    assert r.status_code == 422 and r.json()["parameter"] == "bank_code"


def test_a_bank_is_the_authority_on_its_own_account_numbers(
    rt: Runtime, client: TestClient
) -> None:
    """The card check digit guards a person typing; a bank's own number from its core
    system is taken as sent, and masked like any other."""
    bank, _ = add_bank(rt, client, "BANKA")
    customer = new_person(rt, name="赵敏", account=False)
    account = "6214830000002345"  # no valid Luhn digit
    r = link_customer(client, bank, customer.id_number, "赵敏", account)
    assert r.status_code == 202, r.text
    assert r.json()["account_number_masked"] == "6214********2345"
    assert r.json()["status"] == "pending"
    me = new_person(rt, client=client)
    r = client.post(
        f"{API}/bank-links",
        headers=me.headers,
        json={"account_number": "6214830000012345", "bank_code": "BANKA"},
    )
    assert r.status_code == 422 and r.json()["code"] == "BANK_ACCOUNT_NUMBER_CHECK_DIGIT"


def test_the_same_account_twice_is_refused_whoever_links_it(
    rt: Runtime, client: TestClient
) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    a = new_person(rt, name="甲", client=client)
    b = new_person(rt, name="乙", account=False)
    account = card_number(5)
    assert link_customer(client, bank, b.id_number, "乙", account).status_code == 202
    for attempt in (
        lambda: link_customer(client, bank, b.id_number, "乙", account, **EN),
        lambda: client.post(
            f"{API}/bank-links",
            headers={**a.headers, **EN},
            json={"account_number": account, "bank_code": "BANKA"},
        ),
    ):
        r = attempt()
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["code"] == "BANK_ACCOUNT_ALREADY_LINKED"
        assert body["title"] == "This account is already linked to a medical-insurance account."
        assert account not in r.text
    r = client.post(
        f"{API}/bank-links",
        headers=a.headers,
        json={"account_number": account, "bank_code": "BANKA"},
    )
    assert "已关联" in r.json()["title"]  # zh-CN by default
    with rt.db.unit_of_work() as s:
        assert len(s.execute(select(BankLink)).scalars().all()) == 1


def test_account_numbers_are_validated(rt: Runtime, client: TestClient) -> None:
    add_bank(rt, client, "BANKA")
    me = new_person(rt, client=client)
    good = card_number(6)
    wrong_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    cases = {
        "12345678901": "BANK_ACCOUNT_NUMBER_INVALID",  # 11 digits
        "12345678901234567890": "BANK_ACCOUNT_NUMBER_INVALID",  # 20 digits
        "6214abcd12345678": "BANK_ACCOUNT_NUMBER_INVALID",
        "６２１４８３０１２３４５２３４３": "BANK_ACCOUNT_NUMBER_INVALID",  # full-width digits
        wrong_check: "BANK_ACCOUNT_NUMBER_CHECK_DIGIT",
    }
    for number, code in cases.items():
        r = client.post(
            f"{API}/bank-links",
            headers=me.headers,
            json={"account_number": number, "bank_code": "BANKA"},
        )
        assert r.status_code == 422 and r.json()["code"] == code, (number, r.text)
        assert number not in r.text
    # A 12-15 digit passbook/settlement account has no standard check digit.
    r = client.post(
        f"{API}/bank-links",
        headers=me.headers,
        json={"account_number": "123456789012", "bank_code": "BANKA"},
    )
    assert r.status_code == 202, r.text
    for body, code in (
        ({"account_number": good}, "BANK_CODE_MISSING"),
        ({"account_number": good, "bank_code": "bank a"}, "BANK_CODE_INVALID"),
        ({"account_number": good, "bank_code": "NOSUCHBANK"}, "BANK_NOT_PARTNER"),
        ({"account_number": good, "bank_code": "BANKA", "id_number": "x"}, "PARAMETER_NOT_ALLOWED"),
        ({"account_number": good, "bank_code": "BANKA", "extra": 1}, "VALIDATION_ERROR"),
    ):
        r = client.post(f"{API}/bank-links", headers=me.headers, json=body)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)


def test_a_bank_sees_and_changes_only_its_own_banks_links(rt: Runtime, client: TestClient) -> None:
    bank_a, _ = add_bank(rt, client, "BANKA")
    bank_b, _ = add_bank(rt, client, "BANKB")
    c = new_person(rt, name="客户", account=False)
    mine = link_customer(client, bank_a, c.id_number, "客户", card_number(7)).json()
    theirs = link_customer(client, bank_b, c.id_number, "客户", card_number(8)).json()
    page = client.get(f"{API}/bank-links", headers=bank_a.headers).json()
    assert [i["id"] for i in page["items"]] == [mine["id"]]
    unknown = str(uuid.uuid4())
    answers = [
        client.delete(f"{API}/bank-links/{link_id}", headers=bank_a.headers)
        for link_id in (theirs["id"], unknown, "not-a-uuid")
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.text for a in answers}) == 1  # exactly the same answer
    r = client.delete(f"{API}/bank-links/{mine['id']}", headers=bank_a.headers)
    assert r.status_code == 200 and r.json()["ended_by_kind"] == "client"
    assert r.json()["ended_channel"] == "bank"
    with rt.db.unit_of_work() as s:
        ended = s.execute(select(BankLink).where(BankLink.id == uuid.UUID(mine["id"]))).scalar_one()
        assert ended.ended_by_id == bank_a.client_id
        actions = (
            s.execute(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("bank_link.%"))
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
    assert actions == [
        "bank_link.requested",
        "bank_link.created",
        "bank_link.requested",
        "bank_link.created",
        "bank_link.ended",
    ]


def test_pagination_of_a_banks_links(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    ids = []
    for i in range(3):
        p = new_person(rt, name=f"客户{i}", account=False)
        ids.append(
            link_customer(client, bank, p.id_number, f"客户{i}", card_number(20 + i)).json()["id"]
        )
        clock.advance(timedelta(seconds=1))
    first = client.get(f"{API}/bank-links?page=1&page_size=2", headers=bank.headers).json()
    second = client.get(f"{API}/bank-links?page=2&page_size=2", headers=bank.headers).json()
    assert first["total"] == second["total"] == 3
    assert [i["id"] for i in first["items"] + second["items"]] == ids[::-1]  # newest first


def test_account_numbers_are_not_stored_or_logged_in_clear(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bank, _ = add_bank(rt, client, "BANKA", webhook_url="https://127.0.0.1:9/unreachable")
    c = new_person(rt, name="客户", account=False)
    account = card_number(9)
    r = link_customer(client, bank, c.id_number, "客户", account)
    assert r.status_code == 202
    assert (
        client.delete(f"{API}/bank-links/{r.json()['id']}", headers=bank.headers).status_code == 200
    )
    assert link_customer(client, bank, c.id_number, "客户", account).status_code == 202
    wrong = account + "0000"  # 20 digits: refused, and the refusal logs no number
    assert link_customer(client, bank, c.id_number, "客户", wrong).status_code == 422
    assert deliver_webhooks(rt, rt.clock.now(), 10, timeout=0.5) == 0  # nothing listens there
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "not delivered" in logged
    for value in (account, account[4:12], c.id_number):
        assert value not in logged
    with rt.db.engine.connect() as conn:
        for table in (
            "bank_links",
            "bank_account_index",
            "bank_webhook_events",
            "one_time_codes",
            "audit_log",
            "notifications",
        ):
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed names
                assert account not in repr(row) and account[-8:] not in repr(row), table
    with rt.db.unit_of_work() as s:
        assert s.execute(select(BankAccountIndex)).scalar_one().account_index != account


def test_an_idempotent_retry_replays_the_first_link(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    c = new_person(rt, name="客户", account=False)
    first = link_customer(
        client, bank, c.id_number, "客户", card_number(10), **{"Idempotency-Key": "k1"}
    )
    again = link_customer(
        client, bank, c.id_number, "客户", card_number(10), **{"Idempotency-Key": "k1"}
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
