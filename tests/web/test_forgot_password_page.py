"""忘记密码 in Chromium on a phone (and in 长辈模式): from the login page, the code sent
to the registry phone sets a new password; the old one no longer logs in."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from support.web import PERSON_PASSWORD, ZHANG_LI, ZHANG_LI_ID, ZHANG_XIAOYU_ID, Server, log_in


def _last_code(server: Server) -> str:
    lines = (server.data_dir / "simulated-sms.jsonl").read_text("utf-8").splitlines()
    return str(json.loads(lines[-1])["code"])


def _reset(page: Page, server: Server, name: str, number: str, new_password: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_role("link", name="忘记密码").click()
    page.get_by_label("姓名").fill(name)
    page.get_by_label("身份证号码").fill(number)
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_role("status")).to_be_visible()
    page.get_by_label("短信验证码").fill("000000" if _last_code(server) != "000000" else "111111")
    page.get_by_label("新的登录密码", exact=True).fill(new_password)
    page.get_by_label("再次输入新的登录密码").fill(new_password)
    page.get_by_role("button", name="设置新密码").click()
    expect(page.locator("#sms_code-error")).to_be_visible()
    page.get_by_label("短信验证码").fill(_last_code(server))
    page.get_by_label("新的登录密码", exact=True).fill(new_password)
    page.get_by_label("再次输入新的登录密码").fill(new_password)
    page.get_by_role("button", name="设置新密码").click()
    page.wait_for_url("**/login?done=password_reset")
    expect(page.get_by_text("新密码已设置")).to_be_visible()


def test_a_forgotten_password_is_reset_with_the_code(page: Page, server: Server) -> None:
    _reset(page, server, "张丽", ZHANG_LI_ID, "Reset2026pass")
    log_in(page, server, ZHANG_LI, PERSON_PASSWORD)
    expect(page.locator("#login-error")).to_be_visible()  # the old one is refused
    log_in(page, server, ZHANG_LI, "Reset2026pass")
    page.wait_for_url("**/me")


def test_the_same_in_elder_mode(page: Page, server: Server) -> None:
    page.goto(server.url + "/prefs/elder?to=1&next=/login")
    # Another person: a second code for 张丽 would wait for the resend gap.
    _reset(page, server, "张小雨", ZHANG_XIAOYU_ID, "Elder2026pass")
    button = page.get_by_role("button", name="登录").bounding_box()
    assert button is not None and button["height"] >= 60
