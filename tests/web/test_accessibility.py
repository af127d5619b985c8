"""axe-core over every main page (standard and 长辈模式, phone and desktop widths):
no serious or critical violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from support.web import (
    CHEN_MING,
    DESKTOP,
    PAYMENT_PASSWORD,
    REVIEWER,
    STAFF_PASSWORD,
    ZHANG_JIANGUO,
    ZHANG_JIANGUO_ID,
    ZHANG_LI,
    ZHANG_WEI,
    Server,
    close_page,
    link_id_of,
    log_in,
    new_page,
)

AXE = Axe()
SERIOUS = ("serious", "critical")


@dataclass(frozen=True)
class Urls:
    blocked_unbind: str  # 张伟 → 李娜: an open hospital hold
    member: str
    eligible_unbind: str  # 张伟 → 张子涵
    consent: str  # 张建国 accepts 张丽's request
    outcome: str  # 陈明's request, under review
    review_request: str


@pytest.fixture(scope="module")
def urls(server: Server, browser: Browser) -> Iterator[Urls]:
    tab = new_page(browser)
    try:
        log_in(tab, server, ZHANG_LI)
        tab.goto(server.url + "/me/family/add")
        tab.get_by_label("家人姓名").fill("张建国")
        tab.get_by_label("家人身份证号码").fill(ZHANG_JIANGUO_ID)
        tab.get_by_label("父亲").check()
        tab.get_by_role("button", name="提交绑定申请").click()
        consent = tab.url.split("?")[0] + "/consent"
        tab.context.clear_cookies()

        log_in(tab, server, ZHANG_WEI)
        tab.goto(server.url + "/me/family")
        na, child = link_id_of(tab, "李娜"), link_id_of(tab, "张子涵")
        tab.context.clear_cookies()

        log_in(tab, server, CHEN_MING)
        tab.goto(server.url + "/me/family")
        tab.get_by_role("link", name=re.compile("林芳")).click()
        tab.get_by_role("link", name="解除绑定").click()
        tab.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        tab.get_by_role("button", name="确认解除").click()
        outcome = tab.url
        request_id = outcome.rsplit("/", 1)[1]
        yield Urls(
            blocked_unbind=f"/family/links/{na}/unbind",
            member=f"/family/links/{na}",
            eligible_unbind=f"/family/links/{child}/unbind",
            consent=consent.removeprefix(server.url),
            outcome=outcome.removeprefix(server.url),
            review_request=f"/review/requests/{request_id}",
        )
    finally:
        close_page(tab)


def serious_violations(page: Page) -> list[str]:
    results = AXE.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


PAGES = {
    "anonymous": ["/login", "/help", "/no/such/page"],
    ZHANG_WEI: [
        "/me",
        "/me/family",
        "/me/family/add",
        "member",
        "blocked_unbind",
        "eligible_unbind",
        "/me/account",
        "/me/payment-password",
        "/me/notifications",
        "/me/bank-links",
    ],
    ZHANG_JIANGUO: ["consent"],
    CHEN_MING: ["outcome"],
    REVIEWER: ["/review", "review_request"],
}


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
@pytest.mark.parametrize("who", list(PAGES))
def test_no_serious_accessibility_violation(
    server: Server, browser: Browser, urls: Urls, who: str, elder: bool
) -> None:
    tab = new_page(browser, DESKTOP if who == REVIEWER else 390)
    try:
        if elder:
            tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        if who != "anonymous":
            log_in(tab, server, who, STAFF_PASSWORD if who == REVIEWER else "Demo2026pass")
        found = {}
        for where in PAGES[who]:
            path = getattr(urls, where) if not where.startswith("/") else where
            tab.goto(server.url + path)
            found[where] = serious_violations(tab)
        assert found == {where: [] for where in PAGES[who]}
    finally:
        close_page(tab)


def test_a_form_with_errors_is_accessible(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    page.goto(server.url + "/me/family/add")
    page.get_by_role("button", name="提交绑定申请").click()
    assert page.locator(".error-summary li").count() == 3
    assert serious_violations(page) == []


def test_english_pages_are_accessible(server: Server, page: Page, urls: Urls) -> None:
    page.context.add_cookies([{"name": "qq_lang", "value": "en", "url": server.url}])
    log_in_en = page
    log_in_en.goto(server.url + "/login")
    log_in_en.get_by_label("Mobile number").fill(ZHANG_WEI)
    log_in_en.get_by_label("Password", exact=True).fill("Demo2026pass")
    log_in_en.get_by_role("button", name="Log in").click()
    for path in ("/me", urls.blocked_unbind, "/help"):
        page.goto(server.url + path)
        assert page.locator("html").get_attribute("lang") == "en"
        assert serious_violations(page) == [], path
