"""SPEC story 1 in a review region (440100 广州市: unbind_review = "manual"), the
reviewer queue and decisions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from qinqing.audit import service as audit
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_staff, login
from support.unbind import (
    API,
    audit_actions,
    codes,
    count_requests,
    family,
    load_link,
    make_link,
    notifications,
    party,
    pin_verification,
)

GZ = "440100"
QUEUE = f"{API}/review/unbind-requests"


def submit(client: TestClient, headers: dict[str, str], link_id: object, **body: Any) -> Any:
    return client.post(
        f"{API}/family/links/{link_id}/unbind",
        headers=headers,
        json={"verification": pin_verification(), **body},
    )


def decide(
    client: TestClient, headers: dict[str, str], request_id: str, decision: str, **body: Any
) -> Any:
    return client.post(
        f"{QUEUE}/{request_id}/decision", headers=headers, json={"decision": decision, **body}
    )


def staff(rt: Runtime, client: TestClient, username: str, role: str, region: str) -> dict[str, str]:
    add_staff(rt, username, role, region)
    return login(client, username, STAFF_PASSWORD)


def test_story_one_in_a_review_region_approved(rt: Runtime, client: TestClient) -> None:
    holder, h, member, m, link = family(rt, client, region=GZ)
    _, stranger = party(rt, client, name="赵六", phone="13800138009", seq=19, region=GZ)
    reviewer = staff(rt, client, "gz-review", "reviewer", GZ)
    far_reviewer = staff(rt, client, "eeds-review", "reviewer", "150600")
    clerk = staff(rt, client, "gz-clerk", "clerk", GZ)

    check = client.get(f"{API}/family/links/{link.id}/unbind-check", headers=h).json()
    assert check["eligible"] is True
    assert check["review_required"] is True

    r = submit(client, m, link.id, reason="已分开生活")
    assert r.status_code == 200, r.text
    request_id = r.json()["request"]["id"]
    assert r.json()["request"]["status"] == "pending_review"
    assert r.json()["link"]["status"] == "unbinding"
    assert load_link(rt, link.id).status == "unbinding"

    # Under review: the check and a second submission say so.
    r = client.get(
        f"{API}/family/links/{link.id}/unbind-check", headers={**h, "Accept-Language": "zh-CN"}
    )
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]
    assert "审核中" in r.json()["blockers"][0]["message"]
    assert codes(submit(client, h, link.id).json()) == ["LINK_NOT_ACTIVE"]

    # Both parties and staff of the region see the request; nobody else.
    for headers in (h, m, reviewer, clerk):
        r = client.get(f"{API}/unbind-requests/{request_id}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending_review"
        assert r.json()["on_behalf_of"] == "member"
    for headers in (stranger, far_reviewer):
        assert client.get(f"{API}/unbind-requests/{request_id}", headers=headers).status_code == 404
    assert client.get(f"{API}/unbind-requests/nonsense", headers=h).status_code == 404

    # The queue: the region's reviewer only.
    page = client.get(QUEUE, headers=reviewer).json()
    assert page["total"] == 1
    assert [i["id"] for i in page["items"]] == [request_id]
    assert page["items"][0]["reason"] == "已分开生活"
    assert client.get(QUEUE, headers=far_reviewer).json()["total"] == 0
    assert client.get(QUEUE, headers=clerk).status_code == 403
    assert client.get(QUEUE, headers=h).status_code == 403

    # Only a reviewer of the region decides.
    assert decide(client, far_reviewer, request_id, "approve").status_code == 404
    assert decide(client, clerk, request_id, "approve").status_code == 403
    assert decide(client, h, request_id, "approve").status_code == 403
    assert decide(client, reviewer, "not-an-id", "approve").status_code == 404
    assert load_link(rt, link.id).status == "unbinding"

    r = decide(client, reviewer, request_id, "approve", comment="材料齐全")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["decision_comment"] == "材料齐全"
    ended = r.json()["link"]
    assert ended["status"] == "ended"
    # Ended by the original requester, through the channel they used.
    assert ended["ended_by_kind"] == "person"
    assert ended["ended_channel"] == "app"
    assert ended["end_reason"] == "已分开生活"
    assert load_link(rt, link.id).ended_by_id is not None

    r = decide(client, reviewer, request_id, "reject", comment="晚了")
    assert r.status_code == 409
    assert r.json()["code"] == "REQUEST_NOT_PENDING"
    assert r.json()["request_status"] == "approved"
    assert client.get(QUEUE, headers=reviewer).json()["total"] == 0
    approved = client.get(QUEUE, headers=reviewer, params={"status": "approved"}).json()
    assert approved["total"] == 1

    assert sorted(notifications(rt)) == sorted(
        [
            (holder.id, "unbind.pending_review"),
            (member.id, "unbind.pending_review"),
            (holder.id, "unbind.approved"),
            (member.id, "unbind.approved"),
        ]
    )
    assert audit_actions(rt) == ["unbind.requested", "unbind.review.approved"]
    with rt.db.unit_of_work() as s:
        assert audit.verify(s).ok


def test_rejection_restores_the_link(rt: Runtime, client: TestClient) -> None:
    holder, h, member, _, link = family(rt, client, region=GZ)
    reviewer = staff(rt, client, "gz-review", "reviewer", GZ)
    request_id = submit(client, h, link.id).json()["request"]["id"]

    r = decide(client, reviewer, request_id, "reject")
    assert r.status_code == 422
    assert r.json()["code"] == "COMMENT_REQUIRED"
    r = decide(client, reviewer, request_id, "reject", comment="  ")
    assert r.status_code == 422

    r = decide(
        client,
        {**reviewer, "Idempotency-Key": "decision-1"},
        request_id,
        "reject",
        comment="请先结清费用",
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["link"]["status"] == "active"
    replay = decide(
        client,
        {**reviewer, "Idempotency-Key": "decision-1"},
        request_id,
        "reject",
        comment="请先结清费用",
    )
    assert replay.status_code == 200
    assert replay.json() == r.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert load_link(rt, link.id).status == "active"
    rejected = [pid for pid, kind in notifications(rt) if kind == "unbind.rejected"]
    assert sorted(rejected) == sorted([holder.id, member.id])

    # Active again: a new request can be made, and it is a new request.
    r = submit(client, h, link.id)
    assert r.status_code == 200, r.text
    assert r.json()["request"]["id"] != request_id
    assert count_requests(rt, link.id) == 2
    assert audit_actions(rt) == [
        "unbind.requested",
        "unbind.review.rejected",
        "unbind.requested",
    ]


def test_the_queue_is_oldest_first_and_paginated(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    holder, h = party(rt, client, name="王建国", phone="13800138001", seq=11, region=GZ)
    reviewer = staff(rt, client, "gz-review", "reviewer", GZ)
    ids = []
    for i, relation in enumerate(["spouse", "father", "mother"]):
        member, _ = party(
            rt, client, name=f"家人{i}", phone=f"1380013810{i}", seq=20 + i, region=GZ, pin=None
        )
        link = make_link(rt, holder, member, relation=relation)
        r = submit(client, h, link.id)
        assert r.status_code == 200, r.text
        ids.append(r.json()["request"]["id"])
        clock.advance(timedelta(minutes=5))
    reviewer = login(client, "gz-review", STAFF_PASSWORD)
    first = client.get(QUEUE, headers=reviewer, params={"page_size": 2}).json()
    assert [i["id"] for i in first["items"]] == ids[:2]
    assert (first["total"], first["page"], first["page_size"]) == (3, 1, 2)
    second = client.get(QUEUE, headers=reviewer, params={"page_size": 2, "page": 2}).json()
    assert [i["id"] for i in second["items"]] == ids[2:]
    # A reviewer decides on the request, not on a document: ID numbers stay masked
    # (full numbers are a clerk's, and each such read is audited).
    assert "*" in first["items"][0]["link"]["holder"]["id_number"]
    assert client.get(QUEUE, headers=reviewer, params={"page_size": 0}).status_code == 422
