"""Free text never carries a personal number into the audit chain (the review found
ID and phone numbers kept there as typed): an unbind reason or a clerk's look-up
purpose holding one is refused with a clear 422, and nothing changes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.free_text import holds_personal_number
from qinqing.audit.models import AuditEntry
from qinqing.runtime import Runtime
from support.counter import clerk, counter_family, lookup
from support.unbind import API, count_requests, family, load_link, pin_verification


@pytest.mark.parametrize(
    "text",
    [
        "对方身份证 15060219850312003X 已注销",
        "电话 138 0013 8000 联系不上",
        "卡号6214-8301-2345-2343",
        "手机13800138000",
    ],
)
def test_numbers_in_any_common_spelling_are_found(text: str) -> None:
    assert holds_personal_number(text)


@pytest.mark.parametrize(
    "text", ["家庭情况变化", "2026年12月7日窗口办理", "申请表编号 A-2026-0001", "010-8888 888"]
)
def test_dates_form_numbers_and_landlines_pass(text: str) -> None:
    assert not holds_personal_number(text)


def _entries(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def test_an_unbind_reason_with_an_id_number_is_refused_and_nothing_changes(
    rt: Runtime, client: TestClient
) -> None:
    _, h, _, _, link = family(rt, client)
    before = _entries(rt)
    body = {"verification": pin_verification(), "reason": "她的身份证号 150602198703120048"}
    r = client.post(f"{API}/family/links/{link.id}/unbind", headers=h, json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "FREE_TEXT_PERSONAL_NUMBER"
    assert "150602198703120048" not in r.text
    assert load_link(rt, link.id).status == "active"
    assert count_requests(rt) == 0 and _entries(rt) == before
    body["reason"] = "家庭情况变化"
    ok = client.post(f"{API}/family/links/{link.id}/unbind", headers=h, json=body)
    assert ok.status_code == 200, ok.text


def test_a_look_up_purpose_with_a_phone_number_is_refused(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    before = _entries(rt)
    r = lookup(client, desk, fam.holder_number, reason="回访电话13800131234")
    assert r.status_code == 422 and r.json()["code"] == "FREE_TEXT_PERSONAL_NUMBER"
    assert _entries(rt) == before
