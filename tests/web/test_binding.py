"""添加家庭成员 and the member's consent: 张丽 binds her father 张建国 with mutual aid
and a yearly limit; he logs in, finds the request and accepts it with his own
payment password."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from support.web import (
    PAYMENT_PASSWORD,
    ZHANG_JIANGUO,
    ZHANG_JIANGUO_ID,
    ZHANG_LI,
    ZHANG_XIAOYU,
    ZHANG_XIAOYU_ID,
    Server,
    close_page,
    log_in,
    new_page,
)


def _fill_binding(page: Page, id_number: str) -> None:
    page.get_by_label("家人姓名").fill("张建国")
    page.get_by_label("家人身份证号码").fill(id_number)
    page.get_by_label("父亲").check()
    page.get_by_label(re.compile("^开通")).check()
    page.get_by_label("每年限额（元，选填）").fill("2000")
    page.get_by_role("button", name="提交绑定申请").click()


def test_bind_then_the_member_consents(server: Server, page: Page, browser: Browser) -> None:
    log_in(page, server, ZHANG_LI)
    page.get_by_role("link", name="我的家庭成员").first.click()
    page.get_by_role("link", name="添加家庭成员").click()

    # A wrong ID number is refused by the service and shown at its field.
    _fill_binding(page, ZHANG_JIANGUO_ID[:-1] + ("0" if ZHANG_JIANGUO_ID[-1] != "0" else "1"))
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("#member_id_number")).to_have_attribute("aria-invalid", "true")

    _fill_binding(page, ZHANG_JIANGUO_ID)
    expect(page.get_by_role("heading", level=1)).to_have_text("张建国")
    expect(page.locator("main")).to_contain_text("绑定申请已发送，等待家人确认。")
    expect(page.locator("main")).to_contain_text("待家人确认")

    father = new_page(browser)
    try:
        log_in(father, server, ZHANG_JIANGUO)
        father.get_by_role("link", name="我的家庭成员").first.click()
        card = father.locator(".link-card", has_text="张丽")
        expect(card).to_contain_text("待家人确认")
        card.get_by_role("link", name="去确认").click()
        expect(father.locator("main")).to_contain_text("每年最多支付 2,000.00 元")
        father.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        father.get_by_role("button", name="确认绑定").click()
        expect(father.locator("main")).to_contain_text("您已确认绑定，亲情关系已生效。")
    finally:
        close_page(father)

    page.reload()
    expect(page.locator("main")).to_contain_text("已生效")
    expect(page.locator("main")).to_contain_text("2,000.00 元")


def test_set_the_payment_password(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_LI)  # registered after the demo: no payment password yet
    expect(page.locator("main")).to_contain_text("未设置")
    page.get_by_role("link", name=re.compile("^支付密码")).click()
    page.get_by_label("登录密码").fill("Demo2026pass")
    page.get_by_label("新的支付密码", exact=True).fill("123456")
    page.get_by_label("再次输入新的支付密码").fill("123456")
    page.get_by_role("button", name="保存支付密码").click()
    expect(page.locator(".error-summary")).to_contain_text("过于简单")  # the service's rule

    page.get_by_label("登录密码").fill("Demo2026pass")
    page.get_by_label("新的支付密码", exact=True).fill("582046")
    page.get_by_label("再次输入新的支付密码").fill("582064")
    page.get_by_role("button", name="保存支付密码").click()
    expect(page.locator(".error-summary")).to_contain_text("不一致")

    page.get_by_label("登录密码").fill("wrong-password-1")
    page.get_by_label("新的支付密码", exact=True).fill("582046")
    page.get_by_label("再次输入新的支付密码").fill("582046")
    page.get_by_role("button", name="保存支付密码").click()
    expect(page.locator("#password-error")).to_contain_text("账号或密码错误")

    page.get_by_label("登录密码").fill("Demo2026pass")
    page.get_by_label("新的支付密码", exact=True).fill("582046")
    page.get_by_label("再次输入新的支付密码").fill("582046")
    page.get_by_role("button", name="保存支付密码").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的")
    expect(page.locator("main")).to_contain_text("支付密码已设置。")
    expect(page.locator("main")).to_contain_text("已设置，可修改")


def test_the_member_may_decline(server: Server, page: Page, browser: Browser) -> None:
    log_in(page, server, ZHANG_LI)
    page.goto(server.url + "/me/family/add")
    page.get_by_label("家人姓名").fill("张小雨")
    page.get_by_label("家人身份证号码").fill(ZHANG_XIAOYU_ID)
    page.get_by_label("子女", exact=True).check()
    page.get_by_role("button", name="提交绑定申请").click()
    expect(page.locator("main")).to_contain_text("待家人确认")

    daughter = new_page(browser)
    try:
        log_in(daughter, server, ZHANG_XIAOYU)
        daughter.get_by_role("link", name="我的家庭成员").first.click()
        daughter.locator(".link-card", has_text="张丽").get_by_role("link", name="去确认").click()
        # She has no payment password yet: the page says so before she tries.
        expect(daughter.get_by_role("link", name="设置支付密码")).to_be_visible()
        expect(daughter.get_by_role("button", name="确认绑定")).to_have_count(0)
        daughter.get_by_role("button", name="拒绝绑定").click()
        expect(daughter.locator("main")).to_contain_text("已拒绝这条绑定申请。")
    finally:
        close_page(daughter)

    page.goto(server.url + "/me/notifications")
    expect(page.locator("main")).to_contain_text("张小雨 拒绝了您的绑定申请。")
