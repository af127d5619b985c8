"""Stateful property on the real service (SQLite): unbinding with a correct
verification succeeds exactly when the unbind check said eligible, and a refusal
names exactly the blockers the check showed."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from qinqing.access.principal import Principal
from qinqing.auth.verification import FaceVerification, simulated_face_token
from qinqing.kit.clock import FrozenClock
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from qinqing.unbind import service
from support.accounts import add_person, id_number
from support.profiles import examples
from support.unbind import load_link, make_link

REGIONS = ["150600", "440100", "110000", "500000"]


def test_unbind_succeeds_exactly_when_the_check_said_eligible(
    rt: Runtime, clock: FrozenClock
) -> None:
    if not rt.db.is_sqlite:
        pytest.skip("one database is enough for this property; the API tests cover both")
    serial = count()

    def person(region: str, status: str) -> Person:
        n = next(serial)
        number = id_number(born=date(1950, 1, 1) + timedelta(days=n), seq=7)
        p, _ = add_person(rt, number=number, region=region, status=status, phone=None)
        return p

    @given(
        region=st.sampled_from(REGIONS),
        link_status=st.sampled_from(["active", "active", "pending_consent", "unbinding", "ended"]),
        side=st.sampled_from(["holder", "member"]),
        initiator_status=st.sampled_from(["active", "arrears", "suspended", "terminated"]),
        age_days=st.integers(0, 45),
    )
    @settings(
        max_examples=examples(60),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(region: str, link_status: str, side: str, initiator_status: str, age_days: int) -> None:
        holder = person(region, "active")
        member = person(region, "active")
        link = make_link(rt, holder, member, status=link_status)
        initiator = holder if side == "holder" else member
        with rt.db.unit_of_work() as s:
            s.execute(
                update(Person).where(Person.id == initiator.id).values(status=initiator_status)
            )
        clock.advance(timedelta(days=age_days))
        who = Principal("person", f"acct-{initiator.id}", "app", "t", person_id=initiator.id)

        with rt.db.unit_of_work() as s:
            checked = service.check(s, rt, who, link.id)
        face = FaceVerification(method="face", face_token=simulated_face_token(initiator.id))
        try:
            with rt.db.unit_of_work() as s:
                outcome = service.unbind(s, rt, who, link.id, face)
                status = outcome.request.status
        except service.UnbindRefused as exc:
            assert not checked.eligible
            assert exc.codes == [b.code for b in checked.blockers]
            assert load_link(rt, link.id).status == link_status
            return
        assert checked.eligible
        expected = "pending_review" if checked.review_required else "completed"
        assert status == expected
        assert load_link(rt, link.id).status == (
            "unbinding" if checked.review_required else "ended"
        )

    run()
