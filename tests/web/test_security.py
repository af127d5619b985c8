"""CSRF on every form, the session cookie's flags, logout, expired sessions, and
friendly pages (never a server error) for foreign or unknown ids."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from support.web import CHEN_MING, ZHANG_WEI, Server, close_page, link_id_of, log_in, new_page


def _family_count(page: Page, server: Server) -> int:
    page.goto(server.url + "/me/family")
    return page.locator(".link-card").count()


def test_a_form_posted_without_its_csrf_token_is_refused(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    before = _family_count(page, server)
    page.goto(server.url + "/me/family/add")
    page.locator("main input[name=csrf_token]").evaluate("(el) => el.remove()")
    page.get_by_label("家人姓名").fill("张建国")
    page.get_by_label("家人身份证号码").fill("152701195201180014")
    page.get_by_label("父亲").check()
    with page.expect_response(re.compile("/me/family/add$")) as posted:
        page.get_by_role("button", name="提交绑定申请").click()
    assert posted.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("页面已过期")
    assert _family_count(page, server) == before


def test_another_browsers_token_is_refused(server: Server, page: Page, browser: Browser) -> None:
    log_in(page, server, ZHANG_WEI)
    page.goto(server.url + "/me/payment-password")
    stolen = page.locator("main input[name=csrf_token]").get_attribute("value")
    other = new_page(browser)
    try:
        log_in(other, server, ZHANG_WEI)
        answer = other.request.post(
            server.url + "/logout", form={"csrf_token": stolen or ""}, max_redirects=0
        )
        assert answer.status == 403
        other.goto(server.url + "/me")
        expect(other.get_by_role("heading", level=1)).to_have_text("我的")  # still logged in
    finally:
        close_page(other)


def test_session_cookie_flags_and_logout(server: Server, page: Page, browser: Browser) -> None:
    log_in(page, server, ZHANG_WEI)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["qq_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain http on 127.0.0.1; Secure behind TLS
    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("main")).to_contain_text("您已安全退出。")

    # The token was revoked, not only forgotten by this browser.
    replay = new_page(browser)
    try:
        replay.context.add_cookies(
            [{"name": "qq_session", "value": session["value"], "url": server.url}]
        )
        replay.goto(server.url + "/me")
        expect(replay.get_by_role("heading", level=1)).to_have_text("登录")
        expect(replay.locator("main")).to_contain_text("登录已过期")
    finally:
        close_page(replay)


def test_an_expired_session_gets_the_login_page_and_comes_back(server: Server, page: Page) -> None:
    page.context.add_cookies(
        [{"name": "qq_session", "value": "expired-or-forged", "url": server.url}]
    )
    page.goto(server.url + "/me/family")
    expect(page.locator("main")).to_contain_text("登录已过期")
    page.get_by_label("手机号").fill(ZHANG_WEI)
    page.get_by_label("密码", exact=True).fill("Demo2026pass")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的家庭成员")


def test_foreign_and_unknown_ids_get_a_friendly_page(
    server: Server, page: Page, browser: Browser
) -> None:
    log_in(page, server, ZHANG_WEI)
    page.goto(server.url + "/me/family")
    theirs = link_id_of(page, "张子涵")
    stranger = new_page(browser)
    try:
        log_in(stranger, server, CHEN_MING)
        for path in (
            f"/family/links/{theirs}",
            f"/family/links/{theirs}/unbind",
            "/family/links/not-a-link",
            "/unbind-requests/00000000-0000-0000-0000-000000000000",
            "/no/such/page",
        ):
            response = stranger.goto(server.url + path)
            assert response is not None and response.status == 404, path
            expect(stranger.get_by_role("heading", level=1)).to_have_text("找不到这个页面")
            expect(stranger.locator("body")).not_to_contain_text("Traceback")
    finally:
        close_page(stranger)


def test_pages_send_safe_headers_and_the_api_keeps_problem_json(server: Server) -> None:
    with httpx.Client(base_url=server.url) as http:
        login = http.get("/login")
        assert "default-src 'self'" in login.headers["content-security-policy"]
        assert login.headers["x-frame-options"] == "DENY"
        assert login.headers["cache-control"] == "no-store"
        api = http.get("/api/v1/me")
        assert api.status_code == 401
        assert api.headers["content-type"].startswith("application/problem+json")
        # A preference switch never sends anyone to another site.
        switched = http.get("/prefs/lang?to=en&next=https://evil.example/")
        assert switched.status_code == 303 and switched.headers["location"] == "/"
        switched = http.get("/prefs/lang?to=en&next=//evil.example/")
        assert switched.headers["location"] == "/"
