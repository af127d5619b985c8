"""更换登录手机号 and 重置支付密码 in Chromium on a phone (长辈模式 too): each takes the
code the SMS sent — to the new phone, or to the registry phone — and says it is done."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from support.web import PERSON_PASSWORD, ZHANG_LI, ZHANG_XIAOYU, Server, log_in


def _last(server: Server) -> dict[str, str]:
    lines = (server.data_dir / "simulated-sms.jsonl").read_text("utf-8").splitlines()
    return dict(json.loads(lines[-1]))


def test_the_login_phone_changes_with_a_code_sent_to_it(page: Page, server: Server) -> None:
    log_in(page, server, ZHANG_LI, PERSON_PASSWORD)
    page.wait_for_url("**/me")
    page.get_by_role("link", name="账户与安全").click()
    page.get_by_role("link", name="更换登录手机号").click()
    page.get_by_label("新的手机号").fill("13700001234")
    page.get_by_role("button", name="获取验证码").click()
    sms = _last(server)
    assert sms["to"] == "13700001234"
    page.get_by_label("短信验证码").fill(sms["code"])
    page.get_by_role("button", name="确认更换").click()
    page.wait_for_url("**/me/security?done=phone")
    expect(page.get_by_text("登录手机号已更换")).to_be_visible()


def test_a_payment_password_is_reset_with_the_registry_phone_code_in_elder_mode(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/prefs/elder?to=1&next=/login")
    log_in(page, server, ZHANG_XIAOYU, PERSON_PASSWORD)
    page.wait_for_url("**/me")
    page.goto(server.url + "/me/payment-password/reset")
    page.get_by_role("button", name="获取验证码").click()
    sms = _last(server)
    assert sms["to"] == ZHANG_XIAOYU and "支付密码" in sms["text"]
    page.get_by_label("短信验证码").fill(sms["code"])
    page.get_by_label("新的支付密码", exact=True).fill("402957")
    page.get_by_label("再次输入新的支付密码").fill("402957")
    button = page.get_by_role("button", name="保存支付密码").bounding_box()
    assert button is not None and button["height"] >= 60
    page.get_by_role("button", name="保存支付密码").click()
    page.wait_for_url("**/me?done=payment_password")
