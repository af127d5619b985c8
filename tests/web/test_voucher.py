"""出示电子凭证: 张伟 shows his father 张建国's e-voucher from the member's page; the QR
is large enough to scan, counts down, and the demo hospital redeeming the token it
carries (over the API) sees 张建国. 刷新 gives a new code; 我的 shows his own; the
page works without JavaScript and in 长辈模式."""

from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from support.qr import decode
from support.web import HOSPITAL, ZHANG_WEI, Server, close_page, log_in, new_page

AXE = Axe()


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def redeem(server: Server, token: str) -> dict[str, object]:
    with server.api() as api:
        r = api.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": HOSPITAL[0],
                "client_secret": HOSPITAL[1],
            },
        )
        r.raise_for_status()
        hospital = {"Authorization": "Bearer " + r.json()["access_token"]}
        answer = api.post("/vouchers/redeem", json={"token": token}, headers=hospital)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body


def qr_svg(page: Page) -> str:
    return page.locator(".voucher-qr svg").evaluate("e => e.outerHTML")


def open_father(page: Page, server: Server) -> None:
    log_in(page, server, ZHANG_WEI)
    page.goto(server.url + "/me/family")
    page.get_by_role("link", name=re.compile("张建国")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("张建国")


def test_member_voucher_is_redeemed_by_the_hospital(server: Server, page: Page) -> None:
    open_father(page, server)
    page.get_by_role("button", name="出示电子凭证").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("医保电子凭证")
    main = page.locator("main")
    expect(main).to_contain_text("张建国")
    expect(main).to_contain_text("您的父亲")
    # The countdown runs (the script), from the policy's 60 seconds.
    expect(page.locator("[data-countdown]")).to_contain_text(re.compile(r"还剩 \d+ 秒失效"))
    box = page.locator(".voucher-qr svg").bounding_box()
    assert box is not None and box["width"] >= 240 and box["height"] >= 240
    assert serious(page) == []

    token = decode(qr_svg(page))
    # The token is in the QR only: not in the address, nowhere else on the page.
    assert token not in page.url
    assert page.content().count(token) == 0
    seen = redeem(server, token)
    assert seen["person"]["name"] == "张建国"  # type: ignore[index]
    assert seen["kind"] == "family"
    assert seen["mutual_aid"]["relation"] == "father"  # type: ignore[index]

    page.get_by_role("button", name="刷新").click()
    expect(page.locator(".voucher-qr svg")).to_be_visible()
    fresh = decode(qr_svg(page))
    assert fresh != token
    log = (server.data_dir / "server.log").read_text("utf-8", "replace")
    assert token not in log and fresh not in log


def test_my_own_voucher_without_javascript_and_in_elder_mode(
    server: Server, browser: Browser
) -> None:
    tab = new_page(browser, 390, java_script_enabled=False)
    try:
        tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        log_in(tab, server, ZHANG_WEI)
        tab.get_by_role("button", name="出示电子凭证").click()
        main = tab.locator("main")
        expect(main).to_contain_text("张伟")
        expect(main).to_contain_text("本人")
        # Without the script the page says until when the code is valid.
        expect(tab.locator("[data-countdown]")).to_contain_text(
            re.compile(r"有效期至 \d\d:\d\d:\d\d")
        )
        box = tab.locator(".voucher-qr svg").bounding_box()
        assert box is not None and box["width"] >= 240
        refresh = tab.get_by_role("button", name="刷新").bounding_box()
        assert refresh is not None and refresh["height"] >= 60
        seen = redeem(server, decode(qr_svg(tab)))
        assert seen["person"]["name"] == "张伟"  # type: ignore[index]
        assert seen["kind"] == "self"
    finally:
        close_page(tab)


def test_voucher_page_in_elder_mode_is_accessible(server: Server, browser: Browser) -> None:
    tab = new_page(browser, 390)
    try:
        tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        open_father(tab, server)
        tab.get_by_role("button", name="出示电子凭证").click()
        expect(tab.locator(".voucher-qr svg")).to_be_visible()
        assert serious(tab) == []
        # The language switch lands on the page with the button, not on a stale code.
        tab.get_by_role("link", name="English").click()
        expect(tab.get_by_role("button", name="Show e-voucher")).to_be_visible()
        assert serious(tab) == []
    finally:
        close_page(tab)
