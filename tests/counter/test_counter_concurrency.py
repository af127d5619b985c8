"""Real concurrent counter transactions on PostgreSQL: one link unbinds once, and
concurrent document mismatches are counted exactly (SQLite serializes writers)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from qinqing.access.principal import Principal
from qinqing.auth.models import IdDocumentFailures
from qinqing.counter import service
from qinqing.runtime import Runtime
from qinqing.unbind.service import UnbindRefused
from support.accounts import id_number
from support.counter import audit_entries, counter_family
from support.unbind import count_requests

THREADS = 8
CLERK = Principal(
    "staff", str(uuid.uuid4()), "counter", "test-token", role="clerk", region_code="150600"
)


@pytest.fixture(autouse=True)
def _postgres_only(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; row-lock races are a PostgreSQL matter")


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def attempt(rt: Runtime, link_id: uuid.UUID, number: str, form: str) -> str:
    """One counter unbind in its own unit of work: the status or the blocker codes."""
    try:
        with rt.db.unit_of_work() as s:
            outcome = service.unbind(
                s,
                rt,
                CLERK,
                link_id=link_id,
                on_behalf_of="holder",
                document=service.Document("resident_id", number),
                form_number=form,
            )
            return str(outcome.request.status)
    except UnbindRefused as exc:
        params = exc.blockers[-1].params
        return ",".join(exc.codes) + f":{params.get('remaining_attempts', '-')}"


def test_concurrent_counter_unbinds_of_one_link_end_it_once(rt: Runtime) -> None:
    fam = counter_family(rt)
    results = run_together(
        [
            lambda i=i: attempt(rt, fam.link_id, fam.holder_number, f"FORM-{i}")
            for i in range(THREADS)
        ]
    )
    assert sorted(results) == ["LINK_NOT_ACTIVE:-"] * (THREADS - 1) + ["completed"]
    assert count_requests(rt, fam.link_id) == 1
    assert len(audit_entries(rt, "unbind.completed")) == 1


def test_concurrent_mismatches_are_counted_exactly(rt: Runtime) -> None:
    fam = counter_family(rt)
    wrong = id_number(seq=99)
    results = run_together(
        [lambda i=i: attempt(rt, fam.link_id, wrong, f"FORM-{i}") for i in range(THREADS)]
    )
    # Serialized on the person's row: 4, 3, 2, 1 attempts left, then the lock.
    failed = sorted(r for r in results if r.startswith("VERIFICATION_FAILED"))
    assert failed == [f"VERIFICATION_FAILED:{n}" for n in (1, 2, 3, 4)]
    assert sorted(results)[4:] == ["VERIFICATION_LOCKED:-"] * (THREADS - 4)
    assert [e.details["locked"] for e in audit_entries(rt, "counter.id_document_mismatch")] == [
        False,
        False,
        False,
        False,
        True,
    ]
    with rt.db.unit_of_work() as s:
        row = s.execute(
            select(IdDocumentFailures).where(IdDocumentFailures.person_id == fam.holder.id)
        ).scalar_one()
        assert row.failures == 0 and row.locked_until is not None
    assert count_requests(rt) == 0
