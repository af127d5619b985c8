"""Test helpers for money: a funded holder, a mutual-aid link, an institution token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from qinqing.access.principal import Principal
from qinqing.auth.tokens import principal_from_token
from qinqing.family.models import FamilyLink
from qinqing.family.views import pair_key
from qinqing.kit.errors import DomainError
from qinqing.ledger.accounts import (
    ensure_personal,
    funding_code,
    lock_personal,
    post_transfer,
    system_account,
)
from qinqing.ledger.models import AccountKind, LedgerSystemAccount
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from qinqing.vouchers import service as vouchers
from support.accounts import add_client, add_person, id_number

API = "/api/v1"


@dataclass
class Family:
    holder_id: uuid.UUID
    member_id: uuid.UUID
    holder_number: str
    member_number: str
    link_id: uuid.UUID


def make_family(
    rt: Runtime,
    *,
    seq: int = 1,
    region: str = "150600",
    holder_scheme: str = "employee",
    holder_status: str = "active",
    mutual_aid: bool = True,
    yearly_limit_fen: int | None = None,
    link_status: str = "active",
    area: str = "150602",
    born: date = date(1980, 1, 1),
    member_region: str | None = None,
    member_area: str | None = None,
) -> Family:
    """A holder and a resident member with a link written directly. A member of
    another region (``member_region``, ``member_area``) makes a cross-region link,
    through a quota (``via_quota``) as the national policy binds it."""
    now = rt.clock.now()
    # One unit of work for the two persons and their link (the differential tests
    # build a dozen families for every example).
    with rt.db.unit_of_work() as s:
        holder, hnum = add_person(
            rt,
            session=s,
            name="张伟",
            number=id_number(area=area, born=born, seq=seq * 2, sex="M"),
            region=region,
            scheme=holder_scheme,
            status=holder_status,
            phone=None,
        )
        member, mnum = add_person(
            rt,
            session=s,
            name="张子涵",
            number=id_number(area=member_area or area, born=born, seq=seq * 2 + 1),
            region=member_region or region,
            scheme="resident",
            phone=None,
        )
        s.flush()
        link = FamilyLink(
            holder_id=holder.id,
            member_id=member.id,
            pair_key=pair_key(holder.id, member.id),
            relation="child",
            mutual_aid=mutual_aid,
            mutual_aid_yearly_limit_fen=yearly_limit_fen,
            via_quota=mutual_aid and member_region not in (None, region),
            status=link_status,
            region_code=region,
            created_at=now,
            created_by_kind="person",
            created_by_id=str(holder.id),
            created_channel="app",
            consent_required=False,
            activated_at=now,
            updated_at=now,
        )
        s.add(link)
        s.flush()
        link_id = link.id
    return Family(holder.id, member.id, hnum, mnum, link_id)


def fund(rt: Runtime, person_id: uuid.UUID, amount_fen: int, region: str = "150600") -> None:
    """Credit a personal account from the region's funding account (as a contribution
    would, already cleared: the funding account's balance includes it)."""
    now = rt.clock.now()
    with rt.db.unit_of_work() as s:
        source = system_account(
            s, code=funding_code(region), kind=AccountKind.funding, region_code=region, now=now
        )
        ensure_personal(s, person_id=person_id, region_code=region, now=now)
        target = lock_personal(s, [person_id])[person_id]
        post_transfer(
            s,
            person_id=person_id,
            debit_id=source,
            credit_id=target.id,
            amount_fen=amount_fen,
            kind="contribution",
            at=now,
        )
        target.balance_fen += amount_fen
        s.execute(
            update(LedgerSystemAccount)
            .where(LedgerSystemAccount.id == source)
            .values(balance_fen=LedgerSystemAccount.balance_fen - amount_fen)
        )


def institution_headers(rt: Runtime, client: TestClient, region: str = "150600") -> dict[str, str]:
    cid, secret = add_client(rt, "institution", region)
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def authorize_body(fam: Family, amount_fen: int, reference: str) -> dict[str, object]:
    return {
        "holder_id_number": fam.holder_number,
        "member_id_number": fam.member_number,
        "amount_fen": amount_fen,
        "reference": reference,
    }


def institution_principal(rt: Runtime, region: str = "150600") -> Principal:
    """An institution client and the Principal its token would give, for services."""
    cid, _ = add_client(rt, "institution", region)
    return Principal(
        "client",
        cid,
        "institution",
        token_hash="-",
        region_code=region,
        scopes=frozenset({"payments"}),
        role="institution",
    )


def token_principal(rt: Runtime, client: TestClient) -> Principal:
    """An institution's Principal with a real token, as the fast path needs it (its SQL
    reads the token row at every call)."""
    token = institution_headers(rt, client)["Authorization"].removeprefix("Bearer ")
    with rt.db.read_only() as s:
        return principal_from_token(s, rt, token)


async def through_fast(
    fast: FastPath, principal: Principal, op: payments.Op | vouchers.VoucherAuthorize
) -> payments.Outcome:
    """One operation through the PostgreSQL fast path, as the engine would report it
    (a refusal is an Outcome with its code, and a throttled one's wait)."""

    def answer(o: payments.Outcome) -> tuple[int, Any]:
        return 200, o

    try:
        if isinstance(op, vouchers.VoucherAuthorize):
            reply = await fast.authorize_by_voucher(
                principal,
                vouchers.token_hash(fast.rt, op.voucher_token),
                op.amount_fen,
                op.reference,
                None,
                answer,
                vouchers.STATUS_OF,
            )
        elif isinstance(op, payments.Authorize):
            ix = fast.indexes(op)
            assert ix is not None
            reply = await fast.authorize(principal, op, ix, None, answer)
        else:
            reply = await fast.resolve(principal, op, None, answer)
    except DomainError as exc:
        return payments.Outcome(ok=False, code=exc.code, retry_after=exc.params.get("retry_after"))
    assert isinstance(reply.body, payments.Outcome)
    return reply.body
