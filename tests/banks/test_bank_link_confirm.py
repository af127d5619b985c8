"""Both sides confirm a bank link (both databases): the abuses of the security review
replayed as written are refused, and the confirmations work (the person's one-time
code forwarded by the bank, the person in the app, the bank for an app-started link)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.banks.models import BankLink, WebhookEvent
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.banks import API, Bank, add_bank, card_number, link_customer, sms_codes
from support.family import new_person
from support.unbind import family, pin_verification

EN = {"Accept-Language": "en"}


def confirm(client: TestClient, headers: dict[str, str], link_id: str, **body: str) -> Any:
    return client.post(f"{API}/bank-links/{link_id}/confirm", headers=headers, json=body)


def code_for(rt: Runtime, phone: str) -> str:
    """The last one-time code the simulated SMS provider sent to ``phone``."""
    return [m["code"] for m in sms_codes(rt) if m["to"] == phone][-1]


def events_of(rt: Runtime, bank: Bank) -> list[str]:
    with rt.db.unit_of_work() as s:
        return list(
            s.execute(
                select(WebhookEvent.event_type)
                .where(WebhookEvent.client_id == bank.client_id)
                .order_by(WebhookEvent.created_at, WebhookEvent.id)
            ).scalars()
        )


def status_of(rt: Runtime, link_id: str) -> str:
    with rt.db.unit_of_work() as s:
        return s.execute(
            select(BankLink.status).where(BankLink.id == uuid.UUID(link_id))
        ).scalar_one()


def test_a_bank_linking_a_stranger_reaches_nothing_of_them(rt: Runtime, client: TestClient) -> None:
    """The review's abuse: a bank names someone by ID number and name and reads the
    family. It gets a pending link, and 404 everywhere, as for an unknown id; no
    webhook about the person reaches it. A bank the member did confirm hears all."""
    _, holder_headers, member, _, link = family(rt, client)
    member_number = rt.vault.decrypt("id_number", member.id_number_cipher)
    nosy, _ = add_bank(rt, client, "NOSY", webhook_url="https://127.0.0.1:9/nosy")
    trusted, _ = add_bank(rt, client, "TRUSTED", webhook_url="https://127.0.0.1:9/trusted")

    r = link_customer(client, nosy, member_number, "李秀英", card_number(1), confirm=False)
    assert r.status_code == 202, r.text
    pending = r.json()
    assert pending["status"] == "pending" and pending["awaiting"] == "person"
    assert (
        link_customer(client, trusted, member_number, "李秀英", card_number(2)).status_code == 202
    )

    unknown = str(uuid.uuid4())
    fam = client.get(f"{API}/bank-links/{pending['id']}/family", headers=nosy.headers)
    assert fam.status_code == 404
    assert (
        fam.json() == client.get(f"{API}/bank-links/{unknown}/family", headers=nosy.headers).json()
    )
    check = client.get(
        f"{API}/family/links/{link.id}/unbind-check",
        headers=nosy.headers,
        params={"customer": "member"},
    )
    unknown_check = client.get(
        f"{API}/family/links/{uuid.uuid4()}/unbind-check",
        headers=nosy.headers,
        params={"customer": "member"},
    )
    assert check.status_code == unknown_check.status_code == 404
    assert check.json() == unknown_check.json()
    r = client.post(
        f"{API}/family/links/{link.id}/unbind",
        headers=nosy.headers,
        json={"verification": pin_verification(), "customer_id_number": member_number},
    )
    assert r.status_code == 404, r.text
    # The trusted bank (confirmed by the member) sees the same link.
    trusted_check = client.get(
        f"{API}/family/links/{link.id}/unbind-check",
        headers=trusted.headers,
        params={"customer": "member"},
    )
    assert trusted_check.status_code == 200, trusted_check.text

    # The holder unbinds in the app: the trusted bank hears of it, the nosy one not.
    r = client.post(
        f"{API}/family/links/{link.id}/unbind",
        headers=holder_headers,
        json={"verification": pin_verification()},
    )
    assert r.status_code == 200, r.text
    assert events_of(rt, nosy) == []
    assert events_of(rt, trusted) == ["bank_link.created", "family_link.ended"]
    # Nor can it unlink its way into anything: withdrawing the request is all it can do.
    r = client.delete(f"{API}/bank-links/{pending['id']}", headers=nosy.headers)
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert events_of(rt, nosy) == []


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs by design between two requests."""
    return {k: v for k, v in body.items() if k not in {"id", "id_number_masked"}}


def test_unknown_person_wrong_name_and_other_region_answer_as_a_customer(
    rt: Runtime, client: TestClient
) -> None:
    """No registry oracle: the answer, its shape and what the confirmation says are the
    same for a real customer, an unknown ID number, a wrong name and another region's
    person; only the real customer's phone receives a code."""
    bank, _ = add_bank(rt, client, "BANKA")
    real = new_person(rt, name="赵敏", account=False)
    other_name = new_person(rt, name="赵敏", account=False)
    far = new_person(rt, name="远方", region="440100", account=False)
    with rt.db.unit_of_work() as s:  # an ID number nobody has: the real one's, one digit off
        from qinqing.persons.service import find_by_id_number

        n = real.id_number
        stranger = next(
            c
            for c in (f"{n[:14]}{i:03d}" for i in range(100, 999))
            if _valid(c) and find_by_id_number(s, rt.vault, _valid(c)) is None
        )
    cases = {
        "real": (real.id_number, "赵敏"),
        "unknown": (_valid(stranger), "赵敏"),
        "wrong name": (other_name.id_number, "赵明"),
        "other region": (far.id_number, "远方"),
    }
    answers = {}
    for seq, (case, (number, name)) in enumerate(cases.items()):
        r = link_customer(client, bank, number, name, card_number(10 + seq), confirm=False, **EN)
        assert r.status_code == 202, (case, r.text)
        assert number not in r.text
        body = r.json()
        assert body["id_number_masked"] == number[:6] + "********" + number[-4:]
        answers[case] = body
    shapes = {case: _shape(body) for case, body in answers.items()}
    assert all(set(b) == set(answers["real"]) for b in answers.values())
    assert len({(s["status"], s["awaiting"], s["created_channel"]) for s in shapes.values()}) == 1
    assert [m["to"] for m in sms_codes(rt)] == [real.phone]

    # Confirming: a wrong code answers alike for all, five times, then all are locked.
    for _ in range(5):
        seen = {
            case: confirm(client, bank.headers, body["id"], sms_code="000000").json()["code"]
            for case, body in answers.items()
        }
        assert set(seen.values()) == {"SMS_CODE_INVALID"}, seen
    seen = {
        case: confirm(client, bank.headers, body["id"], sms_code="000000").json()["code"]
        for case, body in answers.items()
    }
    assert set(seen.values()) == {"SMS_CODE_LOCKED"}, seen
    # The bank's list shows all four, pending, alike.
    listed = client.get(f"{API}/bank-links?status=pending", headers=bank.headers).json()
    assert listed["total"] == 4
    assert {i["id"] for i in listed["items"]} == {b["id"] for b in answers.values()}
    # The person with the other name was told nothing; the real one was asked.
    with rt.db.unit_of_work() as s:
        told = dict(
            s.execute(
                select(Notification.person_id, func.count())
                .where(Notification.kind == "bank_link.pending")
                .group_by(Notification.person_id)
            ).all()
        )
    assert told == {real.id: 1}


def _valid(candidate: str) -> str:
    """``candidate`` (17 digits + anything) with its right check digit."""
    from qinqing.identity import ric

    return ric.with_check_digit(candidate[:17])


def test_a_claim_on_someone_elses_card_does_not_block_the_owner(
    rt: Runtime, client: TestClient
) -> None:
    """The review's abuse: a person links someone else's (Luhn-valid) card first. The
    claim stays pending, the owner links and confirms the card, and the claim can then
    never become active."""
    bank, _ = add_bank(rt, client, "BANKA")
    claimer = new_person(rt, name="冒领人", client=client)
    owner = new_person(rt, name="持卡人", client=client)
    card = card_number(7)
    r = client.post(
        f"{API}/bank-links",
        headers=claimer.headers,
        json={"account_number": card, "bank_code": "BANKA"},
    )
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    claim = r.json()["id"]
    # The owner, in the app and through the bank: neither is blocked by the claim.
    r = client.post(
        f"{API}/bank-links",
        headers=owner.headers,
        json={"account_number": card, "bank_code": "BANKA"},
    )
    assert r.status_code == 202, r.text
    r = link_customer(client, bank, owner.id_number, owner.name, card, confirm=False)
    assert r.status_code == 202, r.text
    r = confirm(client, bank.headers, r.json()["id"], sms_code=code_for(rt, owner.phone))
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    # The bank would not confirm the claim; even if it tried, the card is taken.
    r = confirm(client, {**bank.headers, **EN}, claim)
    assert r.status_code == 409 and r.json()["code"] == "BANK_ACCOUNT_ALREADY_LINKED"
    assert status_of(rt, claim) == "pending"
    # A new claim on an actively linked card is refused at once.
    r = client.post(
        f"{API}/bank-links",
        headers=claimer.headers,
        json={"account_number": card, "bank_code": "BANKA"},
    )
    assert r.status_code == 409 and r.json()["code"] == "BANK_ACCOUNT_ALREADY_LINKED"
    # The claimer may withdraw the claim (unlink works on a pending link).
    r = client.delete(f"{API}/bank-links/{claim}", headers=claimer.headers)
    assert r.status_code == 200 and r.json()["status"] == "ended"


def test_the_bank_confirms_with_the_code_the_person_received(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    bank, _ = add_bank(rt, client, "BANKA", webhook_url="https://127.0.0.1:9/hooks")
    p = new_person(rt, name="钱多多", account=False)
    card = card_number(3)

    # Happy path, after one wrong code.
    r = link_customer(client, bank, p.id_number, p.name, card, confirm=False)
    link = r.json()["id"]
    [sms] = [m for m in sms_codes(rt) if m["to"] == p.phone]
    assert sms["code"] in sms["text"] and "bank BANKA" in sms["text"] and card[-4:] in sms["text"]
    assert card not in sms["text"] and p.id_number not in sms["text"]
    assert events_of(rt, bank) == []  # nothing about a pending link
    r = confirm(client, {**bank.headers, **EN}, link)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_REQUIRED"
    r = confirm(client, bank.headers, link, sms_code="999999" if sms["code"] != "999999" else "0")
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_INVALID"
    r = confirm(client, bank.headers, link, sms_code=sms["code"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "active" and out["awaiting"] is None and out["confirmed_at"]
    assert events_of(rt, bank) == ["bank_link.created"]
    assert client.get(f"{API}/bank-links/{link}/family", headers=bank.headers).status_code == 200
    r = confirm(client, {**bank.headers, **EN}, link, sms_code=sms["code"])
    assert r.status_code == 409 and r.json()["code"] == "BANK_LINK_NOT_PENDING"

    # Expired after 10 minutes: the link stays pending.
    r = link_customer(client, bank, p.id_number, p.name, card_number(4), confirm=False)
    late = r.json()["id"]
    code = code_for(rt, p.phone)
    clock.advance(timedelta(minutes=10, seconds=1))
    r = confirm(client, {**bank.headers, **EN}, late, sms_code=code)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_EXPIRED"
    assert "expired" in r.json()["title"]
    assert status_of(rt, late) == "pending"

    # Locked after 5 wrong tries: the right code no longer works.
    r = link_customer(client, bank, p.id_number, p.name, card_number(5), confirm=False)
    locked = r.json()["id"]
    code = code_for(rt, p.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        r = confirm(client, bank.headers, locked, sms_code=wrong)
        assert r.json()["code"] == "SMS_CODE_INVALID"
    r = confirm(client, bank.headers, locked, sms_code=code)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_LOCKED"
    assert status_of(rt, locked) == "pending"
    # The person may still confirm it in the app, or ignore it; the bank may withdraw it.
    r = client.delete(f"{API}/bank-links/{locked}", headers=bank.headers)
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert events_of(rt, bank) == ["bank_link.created"]


def test_the_person_confirms_in_the_app(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    me = new_person(rt, name="孙丽", client=client)
    r = link_customer(client, bank, me.id_number, me.name, card_number(8), confirm=False)
    link = r.json()["id"]
    mine = client.get(f"{API}/bank-links", headers=me.headers).json()["items"]
    assert [(i["id"], i["status"], i["awaiting"]) for i in mine] == [(link, "pending", "person")]
    r = confirm(client, me.headers, link, sms_code="123456")
    assert r.status_code == 422 and r.json()["code"] == "PARAMETER_NOT_ALLOWED"
    r = confirm(client, me.headers, link)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    assert client.get(f"{API}/bank-links/{link}/family", headers=bank.headers).status_code == 200
    with rt.db.unit_of_work() as s:
        kinds = set(
            s.execute(select(Notification.kind).where(Notification.person_id == me.id)).scalars()
        )
    assert {"bank_link.pending", "bank_link.created"} <= kinds
    # Someone else cannot confirm it: the same 404 as an unknown id.
    r = link_customer(client, bank, me.id_number, me.name, card_number(9), confirm=False)
    other = new_person(rt, name="路人", client=client)
    assert confirm(client, other.headers, r.json()["id"]).status_code == 404


def test_an_app_started_link_waits_for_the_bank(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA", webhook_url="https://127.0.0.1:9/hooks")
    elsewhere, _ = add_bank(rt, client, "BANKB")
    me = new_person(rt, name="周杰", client=client)
    r = client.post(
        f"{API}/bank-links",
        headers=me.headers,
        json={"account_number": card_number(11), "bank_code": "BANKA"},
    )
    assert r.status_code == 202, r.text
    link = r.json()["id"]
    assert r.json()["awaiting"] == "bank"
    # The bank sees it to follow up, but reaches nothing of the person yet.
    listed = client.get(f"{API}/bank-links?status=pending", headers=bank.headers).json()
    assert [i["id"] for i in listed["items"]] == [link]
    assert client.get(f"{API}/bank-links/{link}/family", headers=bank.headers).status_code == 404
    assert events_of(rt, bank) == []
    assert confirm(client, elsewhere.headers, link).status_code == 404
    r = confirm(client, bank.headers, link, sms_code="123456")
    assert r.status_code == 422 and r.json()["code"] == "PARAMETER_NOT_ALLOWED"
    r = confirm(client, bank.headers, link)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    assert r.json()["confirmed_at"]
    assert client.get(f"{API}/bank-links/{link}/family", headers=bank.headers).status_code == 200
    assert events_of(rt, bank) == ["bank_link.created"]
