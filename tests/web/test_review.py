"""A region that reviews unbinds (广州市, 440100): the person submits (verifying with
a face check, which this module's server offers), sees 审核中 with what happens
next; a reviewer of the region finds it in the queue and approves it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from support.web import (
    CHEN_MING,
    LIN_FANG,
    REVIEWER,
    STAFF_PASSWORD,
    Server,
    close_page,
    log_in,
    new_page,
)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    # The demo/test face provider: a development server may offer it, production refuses it.
    return {"QINQING_FACE_PROVIDER": "simulated"}


def test_unbind_waits_for_review_then_is_approved(
    server: Server, page: Page, browser: Browser
) -> None:
    log_in(page, server, CHEN_MING)
    page.get_by_role("link", name="我的家庭成员").first.click()
    page.get_by_role("link", name=re.compile("林芳")).click()
    page.get_by_role("link", name="解除绑定").click()
    expect(page.locator("main")).to_contain_text("需要经办机构审核")
    page.get_by_label("人脸核验").check()
    page.get_by_label("解除原因（选填）").fill("家庭情况变化")
    page.get_by_role("button", name="确认解除").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("审核中")
    expect(page.locator("main")).to_contain_text("审核结果会通过消息通知您和家人")
    outcome_url = page.url

    reviewer = new_page(browser, 1280)
    try:
        log_in(reviewer, server, REVIEWER, STAFF_PASSWORD)
        expect(reviewer.get_by_role("heading", level=1)).to_have_text("解绑审核")
        row = reviewer.locator("tbody tr", has_text="林芳")
        expect(row).to_contain_text("陈明")
        row.get_by_role("link", name=re.compile("审核")).click()
        expect(reviewer.locator("main")).to_contain_text("家庭情况变化")
        expect(reviewer.locator("main")).to_contain_text("人脸核验")

        # Rejecting needs a comment: the refusal comes from the service, shown at the field.
        reviewer.get_by_label("驳回：关系继续有效").check()
        reviewer.get_by_role("button", name="提交审核结果").click()
        expect(reviewer.locator(".error-summary")).to_contain_text("请填写审核意见")

        reviewer.get_by_label("通过：解除这条亲情关系").check()
        reviewer.get_by_label("审核意见").fill("材料齐全，同意解除")
        reviewer.get_by_role("button", name="提交审核结果").click()
        expect(reviewer.locator("main")).to_contain_text("审核通过，已解除")
        reviewer.get_by_role("link", name="返回待审核列表").click()
        expect(reviewer.locator("main")).to_contain_text("暂时没有待审核的申请")
    finally:
        close_page(reviewer)

    page.goto(outcome_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("解除成功")
    member = new_page(browser)
    try:
        log_in(member, server, LIN_FANG)
        member.goto(server.url + "/me/notifications")
        expect(member.locator("main")).to_contain_text("已审核通过")
    finally:
        close_page(member)


def test_a_person_cannot_open_the_review_queue(server: Server, page: Page) -> None:
    log_in(page, server, LIN_FANG)
    response = page.goto(server.url + "/review")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("无权查看")
