"""Links the registry ends (SPEC §3, "Mutual aid across regions"), both databases: a
re-import that moves a holder to another region or terminates their insurance ends
their cross-region (``via_quota``) links and only those; a death ends every open
link of the person, as holder and as member, pending ones and one under unbind
review too. Each with notices to both parties, an audit entry, and LINK_ENDED
published in the import's transaction (a bank hears of it)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.models import AuditEntry
from qinqing.audit.service import record
from qinqing.banks.models import WebhookEvent
from qinqing.family.events import LINK_ENDED, FamilyEvent
from qinqing.family.models import FamilyLink
from qinqing.family.views import pair_key
from qinqing.ledger.accounts import lock_accounts
from qinqing.notify.models import Notification
from qinqing.persons.importer import ImportReport, import_csv
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from qinqing.unbind.models import UnbindRequest
from support.banks import add_bank, card_number, link_customer
from support.factories import person_row, write_persons_csv
from support.family import Party, new_person
from support.quota import quota_balance, quota_family, top_up
from support.resident import assert_reconciled, balance_of

OPERATOR = Actor("operator", "pytest", "admin")
NOTICE = "link.ended_by_registry"


def person(rt: Runtime, name: str, born: date = date(1985, 1, 1), sex: str = "M") -> Party:
    return new_person(rt, name=name, born=born, sex=sex, account=False)


def link(
    rt: Runtime,
    holder: Party,
    member: Party,
    *,
    relation: str = "spouse",
    status: str = "active",
    via_quota: bool = False,
) -> uuid.UUID:
    """A link as the binding service leaves it; ``via_quota`` set directly (the binding
    beyond the policy's scope that makes such links is another piece of work)."""
    now = rt.clock.now()
    with rt.db.unit_of_work() as s:
        row = FamilyLink(
            holder_id=holder.id,
            member_id=member.id,
            pair_key=pair_key(holder.id, member.id),
            relation=relation,
            mutual_aid=True,
            mutual_aid_yearly_limit_fen=None,
            via_quota=via_quota,
            status=status,
            region_code="150600",
            created_at=now,
            created_by_kind="person",
            created_by_id=str(holder.id),
            created_channel="app",
            consent_required=True,
            activated_at=None if status.startswith("pending") else now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return row.id


def row_of(p: Party, **changes: str) -> list[str]:
    """The person's registry row as stored, with ``changes``."""
    fields = {
        "region_code": "150600",
        "scheme": "employee",
        "status": "active",
        "phone": p.phone,
        **changes,
    }
    return person_row(
        p.id_number,
        p.name,
        fields["region_code"],
        fields["scheme"],
        fields["status"],
        fields["phone"],
    )


def reimport(rt: Runtime, tmp_path: Path, *rows: list[str]) -> ImportReport:
    path = write_persons_csv(tmp_path / f"{uuid.uuid4().hex}.csv", list(rows))
    return import_csv(rt, path, actor=OPERATOR)


def links(rt: Runtime) -> dict[uuid.UUID, FamilyLink]:
    with rt.db.unit_of_work() as s:
        found = {row.id: row for row in s.execute(select(FamilyLink)).scalars()}
        s.expunge_all()
        return found


def notices(rt: Runtime) -> list[tuple[uuid.UUID, str, str]]:
    """(person, link id, cause) of every registry notice."""
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(Notification).where(Notification.kind == NOTICE)).scalars()
        return sorted(
            ((n.person_id, n.payload["link_id"], n.payload["cause"]) for n in rows), key=str
        )


def audited(rt: Runtime) -> dict[str, str]:
    """link id -> cause of every ``family.ended_by_registry`` entry."""
    with rt.db.unit_of_work() as s:
        rows = s.execute(
            select(AuditEntry).where(AuditEntry.action == "family.ended_by_registry")
        ).scalars()
        return {e.subject_id: e.details["cause"] for e in rows}


def record_ended(rt: Runtime) -> list[uuid.UUID]:
    """The links of every LINK_ENDED published from now on (the quota's refund and the
    banks subscribe to the same event)."""
    heard: list[uuid.UUID] = []

    def hear(_session: Session, event: FamilyEvent) -> None:
        if event.type == LINK_ENDED:
            heard.append(event.link.id)

    rt.events.subscribe(FamilyEvent, hear)
    return heard


def test_a_holder_moving_away_ends_only_their_cross_region_links(
    rt: Runtime, tmp_path: Path
) -> None:
    holder, far, near, other = (person(rt, n) for n in ("王建国", "李秀英", "王小明", "赵六"))
    quota = link(rt, holder, far, via_quota=True)
    local = link(rt, holder, near, relation="sibling")
    # The holder as member of someone else's cross-region link: not theirs to lose.
    as_member = link(rt, other, holder, via_quota=True)
    heard = record_ended(rt)

    report = reimport(rt, tmp_path, row_of(holder, region_code="440100"), row_of(far))

    assert [(c.line, dict(c.fields)) for c in report.changed] == [
        (2, {"region_code": ("150600", "440100")})
    ]
    now = links(rt)
    ended = now[quota]
    assert ended.status == "ended"
    assert (ended.ended_by_kind, ended.ended_by_id, ended.ended_channel) == (
        "system",
        "registry",
        "registry",
    )
    assert ended.end_reason == "holder's insurance moved to another region"
    assert ended.ended_at == rt.clock.now()
    assert now[local].status == now[as_member].status == "active"
    assert notices(rt) == sorted(
        [(holder.id, str(quota), "holder_moved"), (far.id, str(quota), "holder_moved")], key=str
    )
    assert heard == [quota]
    assert audited(rt) == {str(quota): "holder_moved"}


def test_a_holders_termination_ends_their_cross_region_links(rt: Runtime, tmp_path: Path) -> None:
    holder, far, near = (person(rt, n) for n in ("王建国", "李秀英", "王小明"))
    quota = link(rt, holder, far, via_quota=True, status="pending_consent")
    local = link(rt, holder, near, relation="sibling")
    heard = record_ended(rt)

    report = reimport(rt, tmp_path, row_of(holder, status="terminated"))

    assert [dict(c.fields) for c in report.changed] == [{"status": ("active", "terminated")}]
    now = links(rt)
    assert now[quota].status == "ended"
    assert now[quota].end_reason == "holder's insurance terminated"
    assert now[local].status == "active"
    assert {(pid, cause) for pid, _, cause in notices(rt)} == {
        (holder.id, "holder_terminated"),
        (far.id, "holder_terminated"),
    }
    assert heard == [quota]
    # The same file again: nothing changes, nothing more ends or is told.
    again = reimport(rt, tmp_path, row_of(holder, status="terminated"))
    assert again.changed == [] and heard == [quota] and len(notices(rt)) == 2


def test_a_death_ends_every_open_link_of_the_person_on_both_sides(
    rt: Runtime, tmp_path: Path
) -> None:
    dead = person(rt, "王建国")
    wife = person(rt, "李秀英", sex="F")
    child = person(rt, "王小明", born=date(2010, 1, 1))
    son = person(rt, "王大明", born=date(1960, 1, 1))
    mother = person(rt, "张桂兰", born=date(1935, 1, 1), sex="F")
    stranger, stranger_wife = person(rt, "赵六"), person(rt, "钱七", sex="F")
    active = link(rt, dead, wife)
    pending_consent = link(rt, dead, mother, relation="mother", status="pending_consent")
    pending_proof = link(rt, dead, child, relation="child", status="pending_proof")
    as_member = link(rt, son, dead, relation="father")
    unbinding = link(rt, mother, dead, relation="child", status="unbinding")
    untouched = link(rt, stranger, stranger_wife)
    with rt.db.unit_of_work() as s:
        request = UnbindRequest(
            holder_id=mother.id,
            link_id=unbinding,
            region_code="150600",
            status="pending_review",
            on_behalf_of="holder",
            initiator_person_id=mother.id,
            actor_kind="person",
            actor_id=str(mother.id),
            channel="app",
            verification_method="payment_password",
            created_at=rt.clock.now(),
        )
        s.add(request)
        s.flush()
        request_id = request.id
    heard = record_ended(rt)

    report = reimport(rt, tmp_path, row_of(dead, status="deceased"))

    assert [dict(c.fields) for c in report.changed] == [{"status": ("active", "deceased")}]
    ended = {active, pending_consent, pending_proof, as_member, unbinding}
    now = links(rt)
    assert {lid for lid, row in now.items() if row.status == "ended"} == ended
    assert now[untouched].status == "active"
    assert {now[lid].end_reason for lid in ended} == {"holder deceased", "member deceased"}
    assert now[as_member].end_reason == now[unbinding].end_reason == "member deceased"
    assert sorted(heard, key=str) == sorted(ended, key=str)
    told = notices(rt)
    assert len(told) == 10
    for lid in ended:
        parties = {(now[lid].holder_id), (now[lid].member_id)}
        assert {pid for pid, link_id, _ in told if link_id == str(lid)} == parties
    assert set(audited(rt)) == {str(lid) for lid in ended}
    with rt.db.unit_of_work() as s:
        closed = s.execute(select(UnbindRequest).where(UnbindRequest.id == request_id)).scalar_one()
        assert (closed.status, closed.decided_by, closed.decided_at) == (
            "closed",
            "registry",
            rt.clock.now(),
        )


def test_a_bank_hears_of_a_link_the_registry_ended(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    holder = new_person(rt, name="王建国", client=client)
    far = person(rt, "李秀英", sex="F")
    quota = link(rt, holder, far, via_quota=True)
    bank, _ = add_bank(rt, client, "BANKA", webhook_url="https://127.0.0.1:9/hooks")
    r = link_customer(client, bank, holder.id_number, holder.name, card_number(1))
    assert r.status_code == 202, r.text

    reimport(rt, tmp_path, row_of(holder, region_code="440100"))

    with rt.db.unit_of_work() as s:
        events = (
            s.execute(select(WebhookEvent).where(WebhookEvent.event_type == "family_link.ended"))
            .scalars()
            .all()
        )
        assert [e.client_id for e in events] == [bank.client_id]
        data = json.loads(events[0].body)["data"]
    assert (data["link_id"], data["link_status"], data["ended_channel"]) == (
        str(quota),
        "ended",
        "registry",
    )


def test_a_failing_effect_rolls_the_whole_import_back(rt: Runtime, tmp_path: Path) -> None:
    """The effects are in the import's transaction: when one fails, no change of the
    file is kept, no link ended, no notice sent."""
    holder, far = person(rt, "王建国"), person(rt, "李秀英", sex="F")
    quota = link(rt, holder, far, via_quota=True)

    def refuse(_session: Session, event: FamilyEvent) -> None:
        raise RuntimeError("a subscriber failed")

    rt.events.subscribe(FamilyEvent, refuse)
    try:
        reimport(rt, tmp_path, row_of(holder, region_code="440100", status="terminated"))
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the import should have failed")

    assert links(rt)[quota].status == "active"
    assert notices(rt) == []
    with rt.db.unit_of_work() as s:
        stored = s.execute(select(Person).where(Person.id == holder.id)).scalar_one()
        assert (stored.region_code, stored.status) == ("150600", "active")


def test_an_import_and_an_unbind_holding_the_link_do_not_deadlock(
    rt: Runtime, tmp_path: Path
) -> None:
    """The global lock order on PostgreSQL: an unbind holds the link, then wants the
    person and the audit head; the import, ending that link for a death, takes the
    link before the person, so it waits instead of closing a cycle."""
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; row-lock order is a PostgreSQL matter")
    dead, wife = person(rt, "王建国"), person(rt, "李秀英", sex="F")
    lid = link(rt, dead, wife)
    holding = threading.Event()
    failures: list[BaseException] = []

    def unbind_like() -> None:
        try:
            with rt.db.unit_of_work() as s:
                s.execute(
                    select(FamilyLink)
                    .where(FamilyLink.holder_id == dead.id, FamilyLink.id == lid)
                    .with_for_update(key_share=True)
                )
                holding.set()
                time.sleep(1.5)  # the import is under way meanwhile
                s.execute(
                    select(Person).where(Person.id == dead.id).with_for_update(key_share=True)
                )
                record(
                    s,
                    actor=OPERATOR,
                    action="test.unbind_like",
                    subject_kind="family_link",
                    subject_id=lid,
                    at=rt.clock.now(),
                )
        except BaseException as exc:  # pragma: no cover - what the test guards against
            failures.append(exc)

    other = threading.Thread(target=unbind_like)
    other.start()
    assert holding.wait(10)
    report = reimport(rt, tmp_path, row_of(dead, status="deceased"))
    other.join(30)

    assert failures == []
    assert [dict(c.fields) for c in report.changed] == [{"status": ("active", "deceased")}]
    assert links(rt)[lid].status == "ended"
    with rt.db.unit_of_work() as s:
        actions = list(s.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())
    # The unbind committed first; the import waited for the link.
    assert actions.index("test.unbind_like") < actions.index("family.ended_by_registry")


def test_a_quota_link_the_registry_ends_returns_its_money_to_the_holder(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    """Bound beyond the scope and filled over the API: the holder's move ends the
    link and the unused quota comes back in the same transaction, statement-true."""
    made = quota_family(rt, client)
    assert top_up(client, made, 30_000).status_code == 201
    assert balance_of(rt, made) == 70_000
    holder = made.holder

    report = reimport(rt, tmp_path, row_of(holder, region_code="500000"))

    assert [dict(c.fields) for c in report.changed] == [{"region_code": ("150600", "500000")}]
    ended = links(rt)[uuid.UUID(made.link_id)]
    assert (ended.status, ended.ended_channel) == ("ended", "registry")
    assert quota_balance(rt, made) == (0, 0)
    assert balance_of(rt, made) == 100_000
    assert_reconciled(rt)
    assert audited(rt) == {made.link_id: "holder_moved"}


def test_quota_returns_and_a_write_holding_an_account_do_not_deadlock(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    """Two holders move in one import; a write (a top-up, a resident contribution)
    holds the second holder's ledger accounts and then appends to the audit chain.
    The import locks every returning holder's accounts before its first audit
    entry (the first quota's return writes one), so it waits instead of closing a
    cycle."""
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; row-lock order is a PostgreSQL matter")
    made = sorted((quota_family(rt, client) for _ in range(2)), key=lambda m: str(m.holder_id))
    for m in made:
        assert top_up(client, m, 10_000).status_code == 201
    second = made[1].holder_id
    holding = threading.Event()
    failures: list[BaseException] = []

    def write_holding_accounts() -> None:
        try:
            with rt.db.unit_of_work() as s:
                lock_accounts(s, [second])
                holding.set()
                time.sleep(1.5)  # the import is under way meanwhile
                record(
                    s,
                    actor=OPERATOR,
                    action="test.account_write",
                    subject_kind="person",
                    subject_id=second,
                    at=rt.clock.now(),
                )
        except BaseException as exc:  # pragma: no cover - what the test guards against
            failures.append(exc)

    other = threading.Thread(target=write_holding_accounts)
    other.start()
    assert holding.wait(10)
    report = reimport(rt, tmp_path, *(row_of(m.holder, region_code="500000") for m in made))
    other.join(30)

    assert failures == []
    assert len(report.changed) == 2
    assert [quota_balance(rt, m) for m in made] == [(0, 0), (0, 0)]
    assert [balance_of(rt, m) for m in made] == [100_000, 100_000]
