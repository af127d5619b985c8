"""Screenshots of the web app for the README and docs/web.md (``make screenshots``).

Runs a live ``qinqing serve`` on demo data in a temporary directory, drives
Chromium through each main page at 390 px (a phone) and 1280 px (a desktop)
in zh-CN, then the unbind journey in 长辈模式, and writes PNGs into the folder
named on the command line (``docs/screenshots``). Needs Chromium and CJK fonts
(``apt-get install -y chromium fonts-noto-cjk``). Run with ``tests`` on the path:
``PYTHONPATH=tests python tests/web/screenshots.py docs/screenshots``.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from qinqing.identity import ric
from support.web import (
    CHEN_MING,
    CLERK,
    DESKTOP,
    PAYMENT_PASSWORD,
    PHONE,
    REVIEWER,
    STAFF_PASSWORD,
    ZHANG_WEI,
    ZHAO_MIN_ID,
    Server,
    close_page,
    launch,
    link_id_of,
    live_server,
    log_in,
    new_page,
)

WIDTHS = (PHONE, DESKTOP)


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print("wrote", out / f"{name}.png")


def both_widths(
    browser: Browser,
    server: Server,
    out: Path,
    who: tuple[str, str] | None,
    pages: list[tuple[str, str]],
) -> None:
    for width in WIDTHS:
        tab = new_page(browser, width)
        try:
            if who:
                log_in(tab, server, *who)
            for name, path in pages:
                tab.goto(server.url + path)
                shoot(tab, out, f"{name}-{width}")
        finally:
            close_page(tab)


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Path(tmp)) as server,
        sync_playwright() as p,
    ):
        browser = launch(p)
        person = (ZHANG_WEI, "Demo2026pass")
        probe = new_page(browser)
        log_in(probe, server, *person)
        probe.goto(server.url + "/me/family")
        spouse, child = link_id_of(probe, "李娜"), link_id_of(probe, "张子涵")
        close_page(probe)

        both_widths(browser, server, out, None, [("login", "/login"), ("help", "/help")])
        both_widths(
            browser,
            server,
            out,
            person,
            [
                ("me", "/me"),
                ("family", "/me/family"),
                ("family-add", "/me/family/add"),
                ("member", f"/family/links/{spouse}"),
                ("unbind-check-blocked", f"/family/links/{spouse}/unbind"),
                ("unbind-verify", f"/family/links/{child}/unbind"),
                ("account", "/me/account"),
                ("payment-password", "/me/payment-password"),
            ],
        )

        # The unbind journey in 长辈模式, on a phone.
        elder = new_page(browser, PHONE)
        elder.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        log_in(elder, server, *person)
        shoot(elder, out, "elder-1-me")
        elder.goto(server.url + "/me/family")
        shoot(elder, out, "elder-2-family")
        elder.goto(server.url + f"/family/links/{spouse}/unbind")
        shoot(elder, out, "elder-3-unbind-check-blocked")
        elder.goto(server.url + f"/family/links/{child}")
        shoot(elder, out, "elder-4-member")
        elder.get_by_role("link", name="解除绑定").click()
        shoot(elder, out, "elder-5-unbind-verify")
        elder.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        elder.get_by_role("button", name="确认解除").click()
        shoot(elder, out, "elder-6-unbind-success")
        success = elder.url.removeprefix(server.url)
        close_page(elder)

        both_widths(
            browser,
            server,
            out,
            person,
            [("unbind-success", success), ("notifications", "/me/notifications")],
        )

        # A region that reviews unbinds: 审核中, then the reviewer's queue.
        chen = new_page(browser, PHONE)
        log_in(chen, server, CHEN_MING, "Demo2026pass")
        chen.goto(server.url + "/me/family")
        chen.get_by_role("link", name=re.compile("林芳")).click()
        chen.get_by_role("link", name="解除绑定").click()
        chen.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        chen.get_by_label("解除原因（选填）").fill("家庭情况变化")
        chen.get_by_role("button", name="确认解除").click()
        review_outcome = chen.url.removeprefix(server.url)
        request_id = review_outcome.rsplit("/", 1)[1]
        close_page(chen)
        both_widths(
            browser,
            server,
            out,
            (CHEN_MING, "Demo2026pass"),
            [("unbind-under-review", review_outcome)],
        )
        both_widths(
            browser,
            server,
            out,
            (REVIEWER, STAFF_PASSWORD),
            [("review-queue", "/review"), ("review-request", f"/review/requests/{request_id}")],
        )
        counter_desk(browser, server, out)
        registration(browser, server, out)
        voucher(browser, server, out)
        browser.close()


def counter_desk(browser: Browser, server: Server, out: Path) -> None:
    """窗口办理: the look-up, 张伟's record, the unbind form, the outcome with 打印回执."""
    zhang_wei_id = ric.with_check_digit("15060219850312003")
    request_path = ""
    for width in WIDTHS:
        tab = new_page(browser, width)
        try:
            log_in(tab, server, CLERK, STAFF_PASSWORD)
            shoot(tab, out, f"counter-lookup-{width}")
            tab.get_by_label("身份证号码").fill(zhang_wei_id)
            tab.get_by_role("button", name="查询").click()
            shoot(tab, out, f"counter-person-{width}")
            if not request_path:
                card = tab.locator(".link-card", has_text="王秀英")
                card.get_by_role("link", name=re.compile("代为解除")).click()
                shoot(tab, out, f"counter-unbind-{width}")
                tab.get_by_label("证件号码").fill(zhang_wei_id)
                tab.get_by_label("申请表编号").fill("EEDS-2026-0815")
                tab.get_by_label("解除原因（选填）").fill("本人到窗口申请解除")
                tab.get_by_role("button", name="确认解除").click()
                request_path = tab.url.removeprefix(server.url)
            else:
                # The link is ended now; the same form for the father's link shows it.
                card = tab.locator(".link-card", has_text="张建国")
                card.get_by_role("link", name=re.compile("代为解除")).click()
                shoot(tab, out, f"counter-unbind-{width}")
                tab.goto(server.url + request_path)
            shoot(tab, out, f"counter-outcome-{width}")
        finally:
            close_page(tab)


def registration(browser: Browser, server: Server, out: Path) -> None:
    """注册: the first step, and the second after 获取验证码 (the same page for anyone)."""
    people = {PHONE: ("赵敏", ZHAO_MIN_ID), DESKTOP: ("赵敏", ZHAO_MIN_ID[:-4] + "0000")}
    for width in WIDTHS:
        tab = new_page(browser, width)
        try:
            tab.goto(server.url + "/register")
            shoot(tab, out, f"register-{width}")
            name, number = people[width]
            tab.get_by_label("姓名").fill(name)
            tab.get_by_label("身份证号码").fill(ric.with_check_digit(number[:17]))
            tab.get_by_role("button", name="获取验证码").click()
            shoot(tab, out, f"register-code-{width}")
        finally:
            close_page(tab)


def voucher(browser: Browser, server: Server, out: Path) -> None:
    """出示电子凭证 for 张伟's father, at both widths and in 长辈模式."""
    for width, elder in ((PHONE, False), (DESKTOP, False), (PHONE, True)):
        tab = new_page(browser, width)
        try:
            if elder:
                tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
            log_in(tab, server, ZHANG_WEI, "Demo2026pass")
            tab.goto(server.url + "/me/family")
            tab.get_by_role("link", name=re.compile("张建国")).click()
            tab.get_by_role("button", name="出示电子凭证").click()
            tab.locator("[data-countdown].ticking").wait_for()
            shoot(tab, out, "elder-voucher" if elder else f"voucher-{width}")
        finally:
            close_page(tab)


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
