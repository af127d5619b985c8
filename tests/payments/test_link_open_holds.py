"""The open holds on a link with the institution that placed each one: what the
unbind page shows under UNSETTLED_PAYMENTS (amount and whom to ask)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.family.models import FamilyLink
from qinqing.kit.clock import FrozenClock
from qinqing.payments.statements import link_open_holds
from qinqing.runtime import Runtime
from support.ledger import API, authorize_body, fund, institution_headers, make_family


def _holds(rt: Runtime, link_id: uuid.UUID) -> list[tuple[int, str]]:
    with rt.db.unit_of_work() as s:
        link = s.execute(select(FamilyLink).where(FamilyLink.id == link_id)).scalar_one()
        return [(h.amount_fen, h.institution) for h in link_open_holds(s, link, rt.clock.now())]


def test_open_holds_name_the_institution_until_resolved_or_expired(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    fam = make_family(rt)
    other = make_family(rt, seq=2)
    fund(rt, fam.holder_id, 100_000)
    fund(rt, other.holder_id, 100_000)
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    inst = institution_headers(rt, client)
    first = client.post(
        f"{API}/payments/authorize", headers=inst, json=authorize_body(fam, 12_800, "H1")
    )
    assert first.status_code == 201, first.text
    clock.advance(timedelta(seconds=1))
    client.post(f"{API}/payments/authorize", headers=inst, json=authorize_body(fam, 3_000, "H2"))
    client.post(f"{API}/payments/authorize", headers=inst, json=authorize_body(other, 999, "O1"))

    holds = _holds(rt, fam.link_id)
    assert [amount for amount, _ in holds] == [12_800, 3_000]  # oldest first, this link only
    assert all(name for _, name in holds)

    settled = client.post(
        f"{API}/payments/{first.json()['payment_id']}/settle",
        headers=inst,
        json={"amount_fen": 12_800},
    )
    assert settled.status_code == 200, settled.text
    assert [amount for amount, _ in _holds(rt, fam.link_id)] == [3_000]

    # A hold past the region's hold_expiry_hours (72 by default) no longer counts.
    clock.advance(timedelta(hours=73))
    assert _holds(rt, fam.link_id) == []
