"""English / 中文 and 长辈模式: switchable on every page, remembered, and the whole
unbind journey usable in 长辈模式 (text at least 18 px, line spacing at least 1.3,
touch targets at least 60 x 60 px)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from support.web import PAYMENT_PASSWORD, ZHANG_WEI, Server, log_in


def test_language_switch_is_remembered(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Me")  # the same page, in English
    page.get_by_role("link", name="My family", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My family")
    expect(page.get_by_role("link", name="Add a family member")).to_be_visible()
    page.goto(server.url + "/help")  # a new navigation: still English
    expect(page.get_by_role("heading", level=1)).to_have_text("Help")
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("办事指南")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_blockers_follow_the_language(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    page.get_by_role("link", name="English").click()
    page.get_by_role("link", name="My family", exact=True).first.click()
    page.get_by_role("link", name=re.compile("李娜")).click()
    page.get_by_role("link", name="Unbind").click()
    blocker = page.locator(".blocker[data-code=UNSETTLED_PAYMENTS]")
    expect(blocker).to_contain_text("¥128.00")
    expect(blocker).not_to_contain_text("医疗费用")


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None
    return box


def _px(page: Page, selector: str, prop: str) -> float:
    value = page.locator(selector).first.evaluate(
        f"(el) => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return float(str(value).removesuffix("px"))


def test_elder_mode_through_the_whole_unbind_journey(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    page.get_by_role("link", name="长辈模式").click()
    expect(page.locator("html")).to_have_class("elder")
    assert _px(page, "main p", "font-size") >= 18
    assert _px(page, "main p", "line-height") >= 1.3 * _px(page, "main p", "font-size")
    # Fewer elements: secondary details are left out.
    expect(page.locator("main .secondary").first).to_be_hidden()

    page.get_by_role("link", name="我的家庭成员").first.click()  # remembered on the next page
    expect(page.locator("html")).to_have_class("elder")
    page.get_by_role("link", name=re.compile("张子涵")).click()
    button = _box(page, "#unbind-button")
    assert button["width"] >= 60 and button["height"] >= 60
    assert _px(page, "#unbind-button", "font-size") >= 18
    page.get_by_role("link", name="解除绑定").click()

    field = _box(page, "#payment_password")
    assert field["height"] >= 60
    confirm = _box(page, "#confirm-unbind")
    assert confirm["width"] >= 60 and confirm["height"] >= 60
    for link in page.locator("header a, header button, main a.back").all():
        if link.is_visible():
            box = link.bounding_box()
            assert box is not None and box["height"] >= 60, link.inner_text()
    page.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
    page.get_by_role("button", name="确认解除").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("解除成功")
    assert _px(page, "main li", "font-size") >= 18
    for target in page.locator("main a, main button, footer a").all():
        box = target.bounding_box()
        assert box is not None and box["height"] >= 60 and box["width"] >= 60, target.inner_text()

    page.get_by_role("link", name="退出长辈模式").click()
    expect(page.locator("html")).not_to_have_class("elder")


def test_banners_after_a_redirect_are_in_the_chosen_language(server: Server, page: Page) -> None:
    page.context.add_cookies([{"name": "qq_lang", "value": "en", "url": server.url}])
    page.goto(server.url + "/login")
    page.get_by_label("Mobile number").fill(ZHANG_WEI)
    page.get_by_label("Password", exact=True).fill("Demo2026pass")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("main")).to_contain_text("You have logged out.")
