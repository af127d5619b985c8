"""Real concurrent transactions on PostgreSQL: an unbind and a concurrent change of
the same link cannot both win (SPEC §3, issue 3 "Unbinding").

Each thread runs its own unit of work, as concurrent requests do. SQLite
serializes writers with BEGIN IMMEDIATE, so these cases run on PostgreSQL only.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.access.principal import Principal
from qinqing.audit import service as audit
from qinqing.audit.models import AuditEntry
from qinqing.auth.models import PersonAccount
from qinqing.auth.verification import (
    FaceVerification,
    PaymentPasswordVerification,
    simulated_face_token,
)
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.payments import service as payments
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from qinqing.unbind import service
from qinqing.unbind.models import UnbindRequest
from support.accounts import add_client, add_person, id_number
from support.ledger import fund
from support.unbind import PIN, family, load_link, make_link

THREADS = 8


@pytest.fixture(autouse=True)
def _postgres_only(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; row-lock races are a PostgreSQL matter")


def principal_of(rt: Runtime, person: Person) -> Principal:
    with rt.db.unit_of_work() as s:
        account_id = s.execute(
            select(PersonAccount.id).where(PersonAccount.person_id == person.id)
        ).scalar_one()
    return Principal("person", str(account_id), "app", "test-token", person_id=person.id)


def attempt_unbind(rt: Runtime, who: Principal, link_id: uuid.UUID) -> str:
    """One unbind in its own transaction: the request status, or the refusal's codes."""
    try:
        with rt.db.unit_of_work() as s:
            outcome = service.unbind(
                s,
                rt,
                who,
                link_id,
                PaymentPasswordVerification(method="payment_password", payment_password=PIN),
                "concurrent",
            )
            return str(outcome.request.status)
    except service.UnbindRefused as exc:
        return ",".join(exc.codes)


def other_change(rt: Runtime, link_id: uuid.UUID, *, hold: float = 0.0, **sync: Any) -> bool:
    """Stands in for another writer of the link (consent, an agency correction ...):
    lock the link, and end it if it is still active. True when it applied."""
    with rt.db.unit_of_work() as s:
        holder = s.execute(
            select(FamilyLink.holder_id).where(FamilyLink.id == link_id)
        ).scalar_one()
        # Locked by (holder, id), as every writer locks a link.
        link = s.execute(
            select(FamilyLink)
            .where(FamilyLink.holder_id == holder, FamilyLink.id == link_id)
            .with_for_update()
        ).scalar_one()
        if "locked" in sync:
            sync["locked"].set()
        time.sleep(hold)
        if link.status != "active":
            return False
        now = rt.clock.now()
        link.status = "ended"
        link.ended_at = now
        link.ended_by_kind = "system"
        link.ended_by_id = "test"
        link.ended_channel = "system"
        link.updated_at = now
        return True


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def unbind_entries(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.like("unbind.%"))
            ).scalar_one()
        )


def requests_of(rt: Runtime, link_id: uuid.UUID) -> list[str]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(UnbindRequest.status).where(UnbindRequest.link_id == link_id))
        return list(rows.scalars())


def chain_ok(rt: Runtime) -> bool:
    with rt.db.unit_of_work() as s:
        return audit.verify(s).ok


@pytest.mark.parametrize(
    ("region", "winner"), [("150600", "completed"), ("440100", "pending_review")]
)
def test_simultaneous_unbinds_one_wins(
    rt: Runtime, client: TestClient, region: str, winner: str
) -> None:
    holder, _, member, _, link = family(rt, client, region=region)
    parties = [principal_of(rt, holder), principal_of(rt, member)]
    calls = [partial(attempt_unbind, rt, parties[i % 2], link.id) for i in range(THREADS)]
    results = run_together(*calls)
    assert sorted(results) == sorted([winner] + ["LINK_NOT_ACTIVE"] * (THREADS - 1)), results
    assert requests_of(rt, link.id) == [winner]
    assert load_link(rt, link.id).status == ("ended" if winner == "completed" else "unbinding")
    assert unbind_entries(rt) == 1
    assert chain_ok(rt)


def test_unbind_waits_for_a_concurrent_change_that_holds_the_link(
    rt: Runtime, client: TestClient
) -> None:
    holder, _, _, _, link = family(rt, client)
    who = principal_of(rt, holder)
    locked = threading.Event()

    def change() -> bool:
        return other_change(rt, link.id, hold=0.5, locked=locked)

    def unbind_after_lock() -> str:
        assert locked.wait(5)
        return attempt_unbind(rt, who, link.id)

    changed, unbound = run_together(change, unbind_after_lock)
    assert changed is True
    assert unbound == "LINK_NOT_ACTIVE"
    assert requests_of(rt, link.id) == []
    assert load_link(rt, link.id).ended_by_kind == "system"
    assert unbind_entries(rt) == 0
    assert chain_ok(rt)


def test_a_concurrent_change_waits_for_an_unbind_that_holds_the_link(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder, _, _, _, link = family(rt, client)
    who = principal_of(rt, holder)
    inside = threading.Event()
    real = service.open_holds_on

    def slow_holds(session: Any, link_: FamilyLink, now: Any) -> Any:
        # Called under the link's row lock: keep it a while.
        inside.set()
        time.sleep(0.5)
        return real(session, link_, now)

    monkeypatch.setattr(service, "open_holds_on", slow_holds)

    def change_after_unbind_locked() -> bool:
        assert inside.wait(5)
        return other_change(rt, link.id)

    unbound, changed = run_together(
        lambda: attempt_unbind(rt, who, link.id), change_after_unbind_locked
    )
    assert unbound == "completed"
    assert changed is False
    assert load_link(rt, link.id).ended_by_kind == "person"
    assert unbind_entries(rt) == 1
    assert chain_ok(rt)


def test_racing_unbind_and_change_exactly_one_applies(rt: Runtime, client: TestClient) -> None:
    holder, _, member, _, first = family(rt, client)
    who = principal_of(rt, holder)
    for round_ in range(6):
        # A fresh active link between the same two persons (the previous one has ended).
        link = first if round_ == 0 else make_link(rt, holder, member)
        unbound, changed = run_together(
            partial(attempt_unbind, rt, who, link.id), partial(other_change, rt, link.id)
        )
        assert (unbound == "completed") != changed, (unbound, changed)
        if not changed:
            assert load_link(rt, link.id).ended_by_kind == "person"
        else:
            assert unbound == "LINK_NOT_ACTIVE"
            assert requests_of(rt, link.id) == []
    assert chain_ok(rt)


def test_unbind_and_payment_authorization_never_both_win(rt: Runtime) -> None:
    """SPEC §3: the check and the change cannot race a concurrent authorization."""
    institution_id, _ = add_client(rt, "institution", "150600")
    institution = Principal(
        "client",
        institution_id,
        "institution",
        "test-token",
        role="institution",
        region_code="150600",
        scopes=frozenset({"payments"}),
    )
    for round_ in range(6):
        holder_number = id_number(seq=100 + 2 * round_, sex="M")
        member_number = id_number(seq=101 + 2 * round_)
        holder, _ = add_person(rt, number=holder_number, phone=None)
        member, _ = add_person(rt, number=member_number, phone=None)
        link = make_link(rt, holder, member)
        fund(rt, holder.id, 10_000)
        who = Principal("person", f"acct-{round_}", "app", "t", person_id=holder.id)
        face = FaceVerification(method="face", face_token=simulated_face_token(holder.id))

        def do_unbind(
            link_id: uuid.UUID = link.id, who: Principal = who, face: FaceVerification = face
        ) -> str:
            try:
                with rt.db.unit_of_work() as s:
                    return str(service.unbind(s, rt, who, link_id, face).request.status)
            except service.UnbindRefused as exc:
                return ",".join(exc.codes)

        def do_authorize(h: str = holder_number, m: str = member_number) -> bool:
            try:
                with rt.db.unit_of_work() as s:
                    op = payments.Authorize(h, m, 2_000, f"R-{h[-6:]}")
                    return payments.authorize(s, rt, institution, op).ok
            except DomainError as exc:
                # The link has ended (NO_MUTUAL_AID_LINK, told by bare ID numbers as
                # MUTUAL_AID_UNAVAILABLE).
                assert exc.code == "MUTUAL_AID_UNAVAILABLE"
                return False

        unbound, authorized = run_together(do_unbind, do_authorize)
        assert (unbound == "completed") != authorized, (unbound, authorized)
        if authorized:
            assert unbound == "UNSETTLED_PAYMENTS"
            assert load_link(rt, link.id).status == "active"
        else:
            assert load_link(rt, link.id).status == "ended"
    assert chain_ok(rt)
