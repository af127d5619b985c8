"""The 共济额度 pages in process, on both databases: what the browser journey cannot
reach cheaply — the quota returned when the link ends (the notice, the statement
line, the ended link's page), a member's top-up refused by the service, an amount
beyond the maximum said in 元, and a link within the holder's scope that has no
quota page."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.family import PAYMENT_PASSWORD, PERSON_PASSWORD, Party
from support.pages import csrf_of, web_login
from support.quota import quota_balance, quota_family, top_up
from support.resident import API, balance_of, resident_family


def _web_login(client: TestClient, who: Party) -> None:
    web_login(client, who.phone, PERSON_PASSWORD)


def _text(html: str) -> str:
    """What a reader sees: the page without its tags."""
    return re.sub(r"<[^>]+>", "", html)


def _later(rt: Runtime) -> None:
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(timedelta(seconds=1))


def test_the_unused_quota_returned_reads_as_a_notice_and_a_statement_line(
    rt: Runtime, client: TestClient
) -> None:
    made = quota_family(rt, client)
    assert top_up(client, made, 30_000).status_code == 201
    _later(rt)
    ended = client.post(
        f"{API}/family/links/{made.link_id}/unbind",
        headers=made.holder_headers,
        json={"verification": {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}},
    )
    assert ended.status_code == 200, ended.text
    assert balance_of(rt, made) == 100_000

    _web_login(client, made.holder)
    notices = client.get("/me/notifications").text
    said = _text(notices)
    assert (
        f"您与 {made.member.name} 的亲情关系已结束，共济额度中未用完的 300.00 元 已退回您的个人账户"
        in said
    ), said
    assert f'href="/family/links/{made.link_id}/quota"' in notices

    statement = client.get("/me/account").text
    assert "共济额度退回" in statement and "+300.00 元" in statement
    assert "转入共济额度" in statement and "-300.00 元" in statement

    link_page = client.get(f"/family/links/{made.link_id}").text
    assert "共济额度中未用完的钱已退回绑定人的个人账户" in link_page
    assert "转入共济额度" not in link_page  # an ended link takes no more money

    history = client.get(f"/family/links/{made.link_id}/quota")
    assert history.status_code == 200
    assert "退回个人账户" in history.text and 'id="confirm-top-up"' not in history.text


def test_a_member_posting_a_top_up_is_refused_and_nothing_moves(
    rt: Runtime, client: TestClient
) -> None:
    made = quota_family(rt, client)
    _web_login(client, made.member)
    form = client.get(f"/family/links/{made.link_id}/quota")
    assert form.status_code == 200 and 'name="amount"' not in form.text
    refused = client.post(
        f"/family/links/{made.link_id}/quota",
        data={
            "csrf_token": csrf_of(form.text),
            "amount": "100",
            "payment_password": PAYMENT_PASSWORD,
        },
    )
    assert refused.status_code == 422
    assert "只有绑定人可以向该亲情关系的共济额度转入资金。" in refused.text
    assert quota_balance(rt, made) == (0, 0)


def test_an_amount_beyond_the_maximum_is_said_in_yuan(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    _web_login(client, made.holder)
    form = client.get(f"/family/links/{made.link_id}/quota")
    refused = client.post(
        f"/family/links/{made.link_id}/quota",
        data={
            "csrf_token": csrf_of(form.text),
            "amount": "999999999",
            "payment_password": PAYMENT_PASSWORD,
        },
    )
    assert refused.status_code == 422
    assert "不超过 100,000,000.00 元" in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert quota_balance(rt, made) == (0, 0) and balance_of(rt, made) == 100_000


def test_a_link_within_the_scope_has_no_quota_page(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    assert made.link["via_quota"] is False
    _web_login(client, made.holder)
    page = client.get(f"/family/links/{made.link_id}/quota", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/family/links/{made.link_id}"
    member_page = client.get(f"/family/links/{made.link_id}").text
    assert "共济额度" not in member_page
    resident = client.get(f"/family/links/{made.link_id}/resident").text
    assert "用您的职工医保个人账户" in resident and "共济额度" not in resident
