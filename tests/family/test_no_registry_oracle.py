"""Binding reveals nothing about the registry (docs/family.md "No registry oracle"):
the request is decided before any look-up, an unknown ID number and a wrong name
give the same answer, failed look-ups are throttled per holder, new holders per
member per month are limited, and a party sees the other's live details only
while the link is in force. The outside review's probes, replayed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.family.models import FamilyLink
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import id_number
from support.family import API, Party, bind, consent, new_person, relogin

SHAPE = ("type", "title", "status", "code", "detail")


def _links(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(FamilyLink)).scalar_one())


def _shape(r: Any) -> dict[str, Any]:
    """The problem document without what differs per request (its id, its instance)."""
    body = r.json()
    return {k: body.get(k) for k in (*SHAPE, "refusals")} | {"http": r.status_code}


def _unknown_number() -> str:
    return id_number(area="150602", born=date(1990, 3, 3), seq=777, sex="F")


def test_an_unknown_number_and_a_wrong_name_answer_alike(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), account=False)
    unknown = bind(client, holder.headers, _unknown_number(), "王芳", "spouse")
    wrong_name = bind(client, holder.headers, member.id_number, "王芬", "spouse")
    assert _shape(unknown) == _shape(wrong_name)
    assert (unknown.status_code, unknown.json()["code"]) == (422, "MEMBER_NOT_FOUND")
    assert set(unknown.json()) == set(wrong_name.json())
    assert member.id_number not in wrong_name.text and "王芬" not in wrong_name.text
    assert _links(rt) == 0


def test_the_request_is_refused_before_anyone_is_looked_up(rt: Runtime, client: TestClient) -> None:
    """A request that cannot be granted answers the same for an insured person with
    the right name and for nobody: a probe learns nothing, and no link is made."""
    holder = new_person(rt, client=client)
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), account=False)
    cases = [
        {"relation": "spouse", "mutual_aid": False, "limit": 100},  # a limit without aid
        {"relation": "father", "mutual_aid": False, "limit": None},  # a woman as father
    ]
    for case in cases:
        answers = [
            bind(
                client,
                holder.headers,
                number,
                name,
                case["relation"],
                mutual_aid=case["mutual_aid"],
                yearly_limit_fen=case["limit"],
            )
            for number, name in (
                (member.id_number, "王芳"),
                (member.id_number, "王芬"),
                (_unknown_number(), "王芳"),
            )
        ]
        assert len({str(_shape(a)) for a in answers}) == 1, [a.text for a in answers]
        assert answers[0].json()["code"] != "MEMBER_NOT_FOUND"
    assert _links(rt) == 0


def test_failed_look_ups_are_throttled_per_holder_until_the_next_day(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """The review guessed 25 names in a row without a 429; now the 11th try of the day
    is refused, whatever it names, until the next Beijing day."""
    holder = new_person(rt, client=client)
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), account=False)
    other = new_person(rt, client=client)
    for i in range(10):
        r = bind(client, holder.headers, member.id_number, f"王{i}", "spouse")
        assert r.json()["code"] == "MEMBER_NOT_FOUND", r.text
    r = bind(client, holder.headers, member.id_number, "王芳", "spouse")
    assert r.status_code == 429 and r.json()["code"] == "BIND_LOOKUPS_EXHAUSTED", r.text
    wait = int(r.headers["retry-after"])
    # The test clock is 2026-11-23 09:00 UTC = 17:00 in Beijing: 7 hours to midnight.
    assert wait == 7 * 3600
    # Another holder is not held back; a valid binding by them goes through.
    assert bind(client, other.headers, member.id_number, "王芳", "spouse").status_code == 201
    clock.advance(timedelta(seconds=wait))
    again = relogin(client, holder)  # the session did not outlive the wait
    assert bind(client, again, member.id_number, "王芳", "spouse").status_code == 201


def test_a_member_gets_at_most_two_new_holders_a_month(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), client=client)
    holders = [new_person(rt, client=client) for _ in range(3)]
    made = []
    for h in holders[:2]:
        r = bind(client, h.headers, member.id_number, "王芳", "sibling")
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    # Withdrawn or not, a request counts for the month.
    client.post(f"{API}/family/links/{made[0]}/decline", headers=holders[0].headers)
    r = bind(client, holders[2].headers, member.id_number, "王芳", "sibling")
    assert (r.status_code, r.json()["code"]) == (409, "MEMBER_BIND_LIMIT_REACHED"), r.text
    assert r.json()["per_month"] == 2
    # The accepted one is not undone by the limit: consent still works.
    assert consent(client, member.headers, made[1]).status_code == 200
    clock.advance(timedelta(days=8))  # 2026-12-01: a new month in Beijing
    again = relogin(client, holders[2])
    assert bind(client, again, member.id_number, "王芳", "sibling").status_code == 201


def _sees(link: dict[str, Any], side: str) -> dict[str, Any]:
    party = link[side]
    return {k: party[k] for k in ("id", "status", "scheme", "region_code")}


def test_live_details_only_while_the_link_is_in_force(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), client=client)
    link = bind(client, holder.headers, member.id_number, "王芳", "spouse").json()
    hidden = {"id": None, "status": None, "scheme": None, "region_code": None}
    # Before consent the holder sees what they typed; the member sees who asks.
    assert _sees(link, "member") == hidden
    assert link["member"]["name"] == "王芳" and "*" in link["member"]["id_number"]
    for_member = client.get(f"{API}/family/links/{link['id']}", headers=member.headers).json()
    assert _sees(for_member, "holder") == hidden and _sees(for_member, "member")["id"]
    active = consent(client, member.headers, link["id"]).json()
    assert _sees(active, "holder")["status"] == "active"
    mine = client.get(f"{API}/me/family", headers=holder.headers).json()["as_holder"][0]
    assert _sees(mine, "member") == {
        "id": str(member.id),
        "status": "active",
        "scheme": "employee",
        "region_code": "150600",
    }
    r = client.post(
        f"{API}/family/links/{link['id']}/unbind",
        headers=holder.headers,
        json={"verification": {"method": "payment_password", "payment_password": "135790"}},
    )
    assert r.status_code == 200, r.text
    for who, other in ((holder, "member"), (member, "holder")):
        ended = client.get(f"{API}/family/links/{link['id']}", headers=who.headers).json()
        assert ended["status"] == "ended"
        assert _sees(ended, other) == hidden, (who.name, ended)


def test_the_guardianship_answer_is_no_oracle_either(rt: Runtime, client: TestClient) -> None:
    """Whether a stranger's binding of a child waits for proof tells nothing a wrong
    guess would not: it is the same 201 as any binding that waits."""
    stranger: Party = new_person(rt, client=client)
    child = new_person(rt, name="张小雨", born=date(2016, 6, 1), sex="F", account=False)
    r = bind(client, stranger.headers, child.id_number, "张小雨", "child")
    assert r.status_code == 201 and r.json()["status"] == "pending_proof"
    assert _sees(r.json(), "member")["status"] is None


def test_both_misses_cost_the_same_round_trips(rt: Runtime, client: TestClient) -> None:
    """The same timing class, counted rather than timed: an unknown number and a wrong
    name run the same statements against the database."""
    from sqlalchemy import event

    holder = new_person(rt, client=client)
    member = new_person(rt, name="王芳", sex="F", born=date(1990, 3, 3), account=False)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    def statements(number: str, name: str) -> list[str]:
        seen.clear()
        event.listen(rt.db.engine, "before_cursor_execute", count)
        try:
            assert bind(client, holder.headers, number, name, "spouse").status_code == 422
        finally:
            event.remove(rt.db.engine, "before_cursor_execute", count)
        return list(seen)

    assert statements(_unknown_number(), "王芳") == statements(member.id_number, "王芬")
