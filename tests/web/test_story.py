"""The person's story: "I bound a family member and now want to unbind, but do not
know how, nor what conditions apply." 登录 → 我的 → 我的家庭成员 → the member →
解除绑定 → a blocker (an unsettled hospital bill) → the bill settled over the API →
支付密码 → 确认解除 → 解除成功."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from support.web import (
    LI_NA,
    PAYMENT_PASSWORD,
    ZHANG_WEI,
    Server,
    close_page,
    log_in,
    new_page,
    settle_open_holds,
)


def test_unbind_journey_from_blocker_to_success(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    expect(page.get_by_role("heading", level=1)).to_have_text("我的")
    expect(page.locator("main")).to_contain_text("张伟")
    # 我的 shows the masked ID number and the balances in yuan.
    expect(page.locator("main")).to_contain_text(re.compile(r"150602\*{8}\d{3}[\dX]"))
    expect(page.locator("main")).to_contain_text("480.00 元")
    expect(page.locator("main")).to_contain_text("352.00 元")  # 128.00 held by the hospital

    page.get_by_role("link", name="我的家庭成员").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的家庭成员")
    page.get_by_role("link", name=re.compile("李娜")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("李娜")

    page.get_by_role("link", name="解除绑定").click()
    blocker = page.locator(".blocker[data-code=UNSETTLED_PAYMENTS]")
    expect(blocker).to_contain_text("128.00 元")
    expect(blocker).to_contain_text("鄂尔多斯市中心医院")  # whom to ask
    expect(blocker).to_contain_text("怎么办")
    expect(page.get_by_role("button", name="确认解除")).to_have_count(0)

    assert settle_open_holds(server, ZHANG_WEI) == 1
    page.get_by_role("link", name="处理完后，重新检查").click()
    expect(page.locator(".blocker")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("已满足全部解除条件")

    # A wrong payment password is refused with the attempts left, and nothing ends.
    page.get_by_label("支付密码").fill("246801")
    page.get_by_role("button", name="确认解除").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("还可尝试 4 次")
    expect(page).to_have_title(re.compile("^错误："))

    page.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
    page.get_by_role("button", name="确认解除").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("解除成功")
    expect(page.locator("main")).to_contain_text("李娜")

    page.get_by_role("link", name="返回我的家庭成员").click()
    card = page.locator(".link-card", has_text="李娜")
    expect(card).to_contain_text("已解除")


def test_the_other_party_is_told(server: Server, browser: Browser) -> None:
    member = new_page(browser)
    try:
        log_in(member, server, LI_NA)
        member.goto(server.url + "/me/notifications")
        expect(member.locator("main")).to_contain_text("与 张伟 的亲情关系已解除。")
    finally:
        close_page(member)


def test_the_unbind_check_works_without_javascript(server: Server, browser: Browser) -> None:
    tab = new_page(browser, java_script_enabled=False)
    try:
        log_in(tab, server, ZHANG_WEI)
        tab.get_by_role("link", name="我的家庭成员").first.click()
        tab.get_by_role("link", name=re.compile("王秀英")).click()
        tab.get_by_role("link", name="解除绑定").click()
        tab.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        tab.get_by_role("button", name="确认解除").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("解除成功")
    finally:
        close_page(tab)
