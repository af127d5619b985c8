"""No existence oracle: what a client may not see is answered exactly like what
does not exist — the same status and the same problem body (both databases).

- a collector asking about a person insured in another region gets the unknown
  ID number's 404 PERSON_NOT_FOUND (not 403 REGION_MISMATCH);
- an institution authorizing by two bare ID numbers gets one answer, 409
  MUTUAL_AID_UNAVAILABLE, for an unknown number, a party elsewhere, and two
  persons of its region without a link (and for every other refusal about the
  persons: tests/payments/test_institution_probes.py); a bill reference it used
  before is refused first, the same for all of them;
- a bank client asking for the unbind check of a party that is not its
  customer gets the unknown link's 404.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import add_client, add_person, id_number
from support.banks import confirm_as_person
from support.ledger import API, authorize_body, fund, institution_headers, make_family
from support.unbind import family, make_link


def token(client: TestClient, cid: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def answer(r: Any) -> tuple[int, Any]:
    return r.status_code, r.json()


UNKNOWN = id_number(area="150602", born=date(1975, 3, 3), seq=444)


# --- collectors ----------------------------------------------------------------------


def test_a_collector_gets_one_answer_for_elsewhere_and_unknown(
    rt: Runtime, client: TestClient
) -> None:
    _, insured_here = add_person(rt, region="150600")
    far = token(client, *add_client(rt, "collector", "440100"))

    def post(number: str) -> tuple[int, Any]:
        body = {"id_number": number, "period": "2026-10", "base_fen": 500_000}
        return answer(client.post(f"{API}/contributions", json=body, headers=far))

    elsewhere, unknown = post(insured_here), post(UNKNOWN)
    assert elsewhere == unknown
    assert unknown[0] == 404 and unknown[1]["code"] == "PERSON_NOT_FOUND"


# --- institutions --------------------------------------------------------------------


def test_an_institution_gets_one_answer_for_elsewhere_and_unknown(
    rt: Runtime, client: TestClient
) -> None:
    fam = make_family(rt)  # both insured in 150600
    far = institution_headers(rt, client, region="440100")

    def authorize(holder: str, member: str) -> tuple[int, Any]:
        body = {
            "holder_id_number": holder,
            "member_id_number": member,
            "amount_fen": 100,
            "reference": "BILL-1",
        }
        return answer(client.post(f"{API}/payments/authorize", json=body, headers=far))

    elsewhere = authorize(fam.holder_number, fam.member_number)
    assert elsewhere == authorize(UNKNOWN, fam.member_number)
    assert elsewhere == authorize(fam.holder_number, UNKNOWN)
    assert elsewhere[0] == 409 and elsewhere[1]["code"] == "MUTUAL_AID_UNAVAILABLE"


def cross_region_pair(rt: Runtime, *, linked: bool) -> tuple[str, str]:
    """A holder insured in 150600 and a member insured in 440100."""
    holder, h_number = add_person(
        rt, number=id_number(seq=60, sex="M"), region="150600", phone=None
    )
    member, m_number = add_person(
        rt,
        number=id_number(area="440106", born=date(2010, 6, 1), seq=61),
        region="440100",
        scheme="resident",
        phone=None,
    )
    fund(rt, holder.id, 50_000)
    if linked:
        make_link(rt, holder, member, relation="child")
    return h_number, m_number


@pytest.mark.parametrize("reference_used", [False, True])
def test_a_party_elsewhere_without_a_link_is_answered_like_an_unknown_one(
    rt: Runtime, client: TestClient, reference_used: bool
) -> None:
    h_number, m_number = cross_region_pair(rt, linked=False)
    inst = institution_headers(rt, client, region="150600")
    if reference_used:
        # Even a duplicate bill number must not tell the two apart.
        fam = make_family(rt, seq=7)
        fund(rt, fam.holder_id, 10_000)
        first = client.post(
            f"{API}/payments/authorize", json=authorize_body(fam, 100, "DUP"), headers=inst
        )
        assert first.status_code == 201, first.text

    def authorize(member: str) -> tuple[int, Any]:
        body = {
            "holder_id_number": h_number,
            "member_id_number": member,
            "amount_fen": 100,
            "reference": "DUP",
        }
        return answer(client.post(f"{API}/payments/authorize", json=body, headers=inst))

    elsewhere, unknown = authorize(m_number), authorize(UNKNOWN)
    assert elsewhere == unknown
    if reference_used:  # the request's own mistake, before anything about the persons
        assert unknown[0] == 409 and unknown[1]["code"] == "PAYMENT_REFERENCE_EXISTS"
    else:
        assert unknown[0] == 409 and unknown[1]["code"] == "MUTUAL_AID_UNAVAILABLE"

    batch = client.post(
        f"{API}/payments/batch",
        json={
            "operations": [
                {
                    "op": "authorize",
                    "holder_id_number": h_number,
                    "member_id_number": m,
                    "amount_fen": 100,
                    "reference": f"B-{i}",
                }
                for i, m in enumerate((m_number, UNKNOWN))
            ]
        },
        headers=inst,
    )
    assert batch.status_code == 200, batch.text
    a, b = batch.json()["results"]
    assert (a["code"], a["message"]) == (b["code"], b["message"])
    assert a["code"] == "MUTUAL_AID_UNAVAILABLE"
    if not reference_used:
        assert a["message"] == unknown[1]["title"]


def test_a_linked_party_of_another_region_can_still_be_paid_for(
    rt: Runtime, client: TestClient
) -> None:
    """Treatment away from home: the holder's region pays for a linked member."""
    h_number, m_number = cross_region_pair(rt, linked=True)
    inst = institution_headers(rt, client, region="150600")
    body = {
        "holder_id_number": h_number,
        "member_id_number": m_number,
        "amount_fen": 100,
        "reference": "AWAY-1",
    }
    r = client.post(f"{API}/payments/authorize", json=body, headers=inst)
    assert r.status_code == 201, r.text


def test_two_persons_of_the_region_without_a_link_are_told_no_more_than_a_stranger(
    rt: Runtime, client: TestClient
) -> None:
    """Both insured in the institution's region: whether they are linked is still
    theirs to show (the family e-voucher), so the answer is an unknown number's."""
    fam = make_family(rt, mutual_aid=False)
    inst = institution_headers(rt, client)
    r = client.post(f"{API}/payments/authorize", json=authorize_body(fam, 100, "N"), headers=inst)
    body = {**authorize_body(fam, 100, "N2"), "member_id_number": UNKNOWN}
    stranger = client.post(f"{API}/payments/authorize", json=body, headers=inst)
    assert answer(r) == answer(stranger)
    assert r.status_code == 409 and r.json()["code"] == "MUTUAL_AID_UNAVAILABLE"


# --- bank clients and the unbind check --------------------------------------------------


def check(client: TestClient, headers: dict[str, str], link_id: object, **params: str) -> Any:
    return client.get(f"{API}/family/links/{link_id}/unbind-check", params=params, headers=headers)


def test_a_bank_gets_the_unknown_links_answer_for_a_non_customer(
    rt: Runtime, client: TestClient
) -> None:
    _, _, _, _, link = family(rt, client)
    bank = token(client, *add_client(rt, "bank", "150600"))
    unknown_link = uuid.uuid4()
    for side in ("holder", "member"):
        known = answer(check(client, bank, link.id, customer=side))
        assert known == answer(check(client, bank, unknown_link, customer=side))
        assert known[0] == 404 and known[1]["code"] == "NOT_FOUND"
    # Leaving out `customer` is refused alike, before any link is looked at.
    assert answer(check(client, bank, link.id)) == answer(check(client, bank, unknown_link))


def test_a_bank_sees_the_check_of_its_customer(rt: Runtime, client: TestClient) -> None:
    _, _, _, _, link = family(rt, client)
    bank = token(client, *add_client(rt, "bank", "150600"))
    # The member becomes the bank's customer by linking an account with it (医保关联).
    r = client.post(
        f"{API}/bank-links",
        headers=bank,
        json={
            "account_number": "6214830123452343",
            "id_number": id_number(seq=12),
            "name": "李秀英",
        },
    )
    assert r.status_code == 202, r.text
    assert confirm_as_person(client, r.json()["id"])  # the person confirms in the app
    r = check(client, bank, link.id, customer="member")
    assert r.status_code == 200, r.text
    assert r.json()["eligible"] is True and r.json()["on_behalf_of"] == "member"
    assert check(client, bank, link.id, customer="holder").status_code == 404
