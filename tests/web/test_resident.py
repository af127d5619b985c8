"""为家人缴纳居民医保: 张伟 pays his father 张建国's resident insurance from the
member's page, on a phone, in 长辈模式: the amount, the window and the cover start
in plain words, a wrong payment password refused on the page, then the receipt;
the statement shows it, 张建国 is told, and the English page says the same.

The server's policy opens the next year's window all year (an operator's
national.toml), so the journey does not depend on today's date."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from qinqing.identity import ric
from support.web import (
    PAYMENT_PASSWORD,
    PHONE,
    ZHANG_JIANGUO,
    ZHANG_WEI,
    Server,
    close_page,
    log_in,
    new_page,
)

AXE = Axe()
ZHANG_WEI_ID = ric.with_check_digit("15060219850312003")


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "national.toml").write_text(
        '[resident]\nenrollment_window = "01-01/12-31"\n', "utf-8"
    )
    yield {"QINQING_POLICY_DIR": str(Path(folder))}


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def _px(page: Page, selector: str, prop: str) -> float:
    value = page.locator(selector).first.evaluate(
        f"(el) => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return float(str(value).removesuffix("px"))


def _big_enough(page: Page, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None and box["width"] >= 60 and box["height"] >= 60
    assert _px(page, selector, "font-size") >= 18


def top_up_zhang_wei(server: Server) -> None:
    """The demo leaves 张伟 352.00 元 available, less than 400 元: the demo collector
    posts two earlier months (160.00 元 each to his personal account)."""
    with server.api() as api:
        r = api.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "qq_demo_collector",
                "client_secret": "demo-collector-secret-2026",
            },
        )
        r.raise_for_status()
        headers = {"Authorization": "Bearer " + r.json()["access_token"]}
        for period in ("2024-01", "2024-02"):
            posted = api.post(
                "/contributions",
                json={"id_number": ZHANG_WEI_ID, "period": period, "base_fen": 800_000},
                headers=headers,
            )
            assert posted.status_code == 201, posted.text


def test_pay_for_father_in_elder_mode_on_a_phone(server: Server, browser: Browser) -> None:
    top_up_zhang_wei(server)
    next_year = datetime.now(timezone(timedelta(hours=8))).year + 1
    tab = new_page(browser, PHONE)
    try:
        tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        log_in(tab, server, ZHANG_WEI)
        tab.goto(server.url + "/me/family")
        tab.get_by_role("link", name=re.compile("张建国")).click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("张建国")
        _big_enough(tab, "#resident-button")
        tab.get_by_role("link", name="为家人缴纳居民医保").click()

        main = tab.locator("main")
        expect(tab.get_by_role("heading", level=1)).to_have_text("为家人缴纳居民医保")
        terms = tab.locator(f"#terms-{next_year}")
        expect(terms).to_contain_text(f"{next_year} 年度：400.00 元")
        expect(terms).to_contain_text(f"{next_year}年1月1日 起享受医保待遇")
        expect(terms).to_contain_text("集中参保期")
        expect(main).to_contain_text("解除绑定也不会退回")
        assert _px(tab, "main p", "font-size") >= 18
        assert _px(tab, "main p", "line-height") >= 1.3 * _px(tab, "main p", "font-size")
        _big_enough(tab, "#confirm-resident")
        assert serious(tab) == []

        # A wrong payment password: refused on the page, nothing paid.
        tab.get_by_label("支付密码").fill("000000")
        tab.get_by_role("button", name="确认缴费").click()
        expect(tab.locator(".error-summary")).to_contain_text("支付密码")
        expect(tab.locator(f"#terms-{next_year}")).to_be_visible()

        tab.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        tab.get_by_role("button", name="确认缴费").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("居民医保缴费凭证")
        expect(tab.get_by_role("status")).to_contain_text("缴费成功")
        expect(tab.locator("#resident-paid")).to_contain_text(
            f"您已为 张建国 缴纳 {next_year} 年度城乡居民医保"
        )
        expect(tab.locator("#resident-paid")).to_contain_text(f"{next_year}年1月1日 起享受医保待遇")
        assert serious(tab) == []

        # The statement shows it, with the cover start, and leads to the receipt.
        tab.goto(server.url + "/me/account")
        line = tab.get_by_role("link", name=f"为 张建国 缴纳 {next_year} 年度居民医保")
        expect(line).to_be_visible()
        expect(tab.locator("main")).to_contain_text("-400.00 元")
        # Back on the pay page: the year is paid, no second payment is offered.
        tab.goto(server.url + "/me/family")
        tab.get_by_role("link", name=re.compile("张建国")).click()
        tab.get_by_role("link", name="为家人缴纳居民医保").click()
        expect(tab.locator(f"#paid-{next_year}")).to_contain_text(f"{next_year} 年度已缴纳")
        expect(tab.locator(f"#terms-{next_year}")).to_have_count(0)

        # The same page in English.
        tab.get_by_role("link", name="English").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text(
            "Pay a family member's resident insurance"
        )
        expect(tab.locator(f"#paid-{next_year}")).to_contain_text(f"{next_year} is paid")
        assert serious(tab) == []
    finally:
        close_page(tab)
    the_father_is_told_and_sees_it(server, browser)


def the_father_is_told_and_sees_it(server: Server, browser: Browser) -> None:
    """张建国's notice and his statement (he has no personal account, so the statement
    lists what his family paid for him)."""
    page = new_page(browser, PHONE)
    try:
        log_in(page, server, ZHANG_JIANGUO)
        page.goto(server.url + "/me/notifications")
        notice = page.get_by_role(
            "link", name=re.compile("张伟 已为您缴纳 .* 年度居民医保 400.00 元")
        )
        expect(notice).to_be_visible()
        notice.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("居民医保缴费凭证")
        expect(page.locator("#resident-paid")).to_contain_text("张伟 已为您缴纳")
        page.goto(server.url + "/me/account")
        expect(page.locator("#paid-for-me")).to_have_text("家人为您缴纳的居民医保")
        expect(page.locator("main")).to_contain_text("张伟")
    finally:
        close_page(page)
