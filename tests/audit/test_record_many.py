"""Appending many entries under one lock of the head (``record_many``) makes the same
chain as appending them one by one: it verifies, the sequence runs on, an edit
inside the batch is found, and a personal number in a reason refuses the batch."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from qinqing.audit.actor import Actor
from qinqing.audit.models import AuditEntry
from qinqing.audit.service import Pending, record, record_many, verify
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

ACTOR = Actor("operator", "pytest", "admin")


def _one(rt: Runtime, subject: str) -> None:
    with rt.db.unit_of_work() as s:
        record(
            s,
            actor=ACTOR,
            action="test.one",
            subject_kind="thing",
            subject_id=subject,
            at=rt.clock.now(),
        )


def test_a_batch_continues_the_chain_and_verifies(rt: Runtime) -> None:
    _one(rt, "before")
    with rt.db.unit_of_work() as s:
        n = record_many(
            s,
            actor=ACTOR,
            at=rt.clock.now(),
            entries=[
                Pending("test.many", "thing", f"t{i}", reason=f"reason {i}", details={"i": [i, i]})
                for i in range(4)
            ],
        )
    assert n == 4
    _one(rt, "after")
    with rt.db.unit_of_work() as s:
        assert verify(s).ok and verify(s).checked == 6
        rows = s.execute(select(AuditEntry.seq, AuditEntry.subject_id).order_by(AuditEntry.seq))
        assert [tuple(r) for r in rows] == [
            (1, "before"),
            (2, "t0"),
            (3, "t1"),
            (4, "t2"),
            (5, "t3"),
            (6, "after"),
        ]
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(reason="edited"))
    with rt.db.unit_of_work() as s:
        assert verify(s).first_bad_seq == 4


def test_a_personal_number_in_a_reason_refuses_the_batch(rt: Runtime) -> None:
    with pytest.raises(DomainError, match="FREE_TEXT_PERSONAL_NUMBER"), rt.db.unit_of_work() as s:
        record_many(
            s,
            actor=ACTOR,
            at=rt.clock.now(),
            entries=[Pending("test.many", "thing", "x", reason="called 13800138000")],
        )
    with rt.db.unit_of_work() as s:
        assert s.execute(select(AuditEntry)).first() is None
