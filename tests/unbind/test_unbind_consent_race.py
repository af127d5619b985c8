"""On PostgreSQL: a member consents to a pending link at the very moment the holder
tries to unbind it. Whatever the order, the result is one of the two serial
outcomes — never a completed unbind on a link that is active afterwards, and
never a lost consent — and the audit chain stays intact."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qinqing.audit.service import verify
from qinqing.auth.verification import PaymentPasswordVerification
from qinqing.family import service as family
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from qinqing.unbind import service as unbind
from support.accounts import by_id
from support.family import PAYMENT_PASSWORD, bind, new_person, principal_of

PIN = PaymentPasswordVerification(method="payment_password", payment_password=PAYMENT_PASSWORD)


def _together(*calls: Any) -> list[Any]:
    start = threading.Barrier(len(calls))

    def go(call: Any) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def test_consent_and_unbind_at_once(rt: Runtime, client: TestClient) -> None:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL matter (SQLite serializes writers)")
    for round_ in range(6):
        holder = new_person(rt, client=client)
        member = new_person(rt, born=date(1986, 3, 3), sex="F", client=client)
        r = bind(client, holder.headers, member.id_number, member.name)
        assert r.status_code == 201 and r.json()["status"] == "pending_consent", r.text
        link_id = uuid.UUID(r.json()["id"])
        as_holder, as_member = principal_of(rt, holder.id), principal_of(rt, member.id)

        def do_consent(who: Any = as_member, lid: uuid.UUID = link_id) -> str:
            try:
                with rt.db.unit_of_work() as s:
                    return str(family.consent(s, rt, who, lid, PIN).status)
            except DomainError as exc:
                return exc.code

        def do_unbind(who: Any = as_holder, lid: uuid.UUID = link_id, n: int = round_) -> str:
            try:
                with rt.db.unit_of_work() as s:
                    return str(unbind.unbind(s, rt, who, lid, PIN, f"race {n}").request.status)
            except DomainError as exc:
                return exc.code

        consented, unbound = _together(do_consent, do_unbind)
        with rt.db.unit_of_work() as s:
            final = by_id(s, FamilyLink, link_id)
            assert final is not None
            status = final.status
        assert consented == "active", consented
        if unbound == "completed":  # consent committed first, then the unbind
            assert status == "ended"
        else:  # the unbind saw a pending link
            assert unbound == "UNBIND_REFUSED" and status == "active"
    with rt.db.unit_of_work() as s:
        assert verify(s).ok
