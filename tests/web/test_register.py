"""注册: 赵敏 (in the registry with a phone, no account yet) asks for a code, reads it
from the simulated SMS file, and opens her account; the page says the same thing
for details that name nobody; 王秀英 (no registry phone) registers with the
face check this module's server offers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from qinqing.identity import ric
from support.web import PERSON_PASSWORD, ZHAO_MIN, ZHAO_MIN_ID, Server

AXE = Axe()
WANG_XIUYING_ID = ric.with_check_digit("15270119540905002")


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"QINQING_FACE_PROVIDER": "simulated", "QINQING_SMS_PROVIDER": "simulated"}


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def sms_code(data_dir: Path, phone: str) -> str:
    """The latest code the simulated provider 'sent' to ``phone``. It writes after
    the answer (a background task), so wait for the line to appear."""
    path = data_dir / "simulated-sms.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists():
            sent = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
            codes = [m["code"] for m in sent if m["to"] == phone]
            if codes:
                return str(codes[-1])
        time.sleep(0.1)
    raise AssertionError("no SMS was written for " + phone)


def start(page: Page, server: Server, name: str, id_number: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_role("link", name="注册").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("注册")
    page.get_by_label("姓名").fill(name)
    page.get_by_label("身份证号码").fill(id_number)


def test_register_with_the_sms_code(server: Server, page: Page) -> None:
    # Details that name nobody get exactly the page real ones get.
    start(page, server, "不存在", ric.with_check_digit("15060219990101001"))
    page.get_by_role("button", name="获取验证码").click()
    nobody = page.locator(".notice").inner_text()

    start(page, server, "赵敏", ZHAO_MIN_ID)
    assert serious(page) == []
    page.get_by_role("button", name="获取验证码").click()
    expect(page.locator(".notice")).to_have_text(nobody)
    assert "验证码" in nobody
    assert ZHAO_MIN_ID not in page.url
    assert serious(page) == []

    code = sms_code(server.data_dir, ZHAO_MIN)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("短信验证码").fill(wrong)
    page.get_by_label("手机号").fill(ZHAO_MIN)
    page.get_by_label("登录密码", exact=True).fill(PERSON_PASSWORD)
    page.get_by_label("再次输入登录密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("短信验证码不正确")
    expect(page).to_have_title(re.compile("^错误："))
    assert serious(page) == []

    page.get_by_label("短信验证码").fill(code)
    page.get_by_label("登录密码", exact=True).fill(PERSON_PASSWORD)
    page.get_by_label("再次输入登录密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的")
    expect(page.locator(".notice.success")).to_contain_text("注册成功")
    expect(page.locator("main")).to_contain_text("赵敏")


def test_register_with_the_face_check(server: Server, page: Page) -> None:
    start(page, server, "王秀英", WANG_XIUYING_ID)
    page.get_by_role("button", name="改用人脸核验").click()
    expect(page.get_by_label("短信验证码")).to_have_count(0)
    assert serious(page) == []
    page.get_by_label("手机号").fill("13700000001")
    page.get_by_label("登录密码", exact=True).fill(PERSON_PASSWORD)
    page.get_by_label("再次输入登录密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="人脸核验并注册").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的")
    expect(page.locator("main")).to_contain_text("王秀英")


def test_a_stranger_fails_the_face_check(server: Server, page: Page) -> None:
    start(page, server, "李四", ric.with_check_digit("15060219990101001"))
    page.get_by_role("button", name="改用人脸核验").click()
    page.get_by_label("手机号").fill("13700000002")
    page.get_by_label("登录密码", exact=True).fill(PERSON_PASSWORD)
    page.get_by_label("再次输入登录密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="人脸核验并注册").click()
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("注册")


def test_register_in_elder_mode(server: Server, page: Page) -> None:
    page.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
    start(page, server, "赵敏", ZHAO_MIN_ID)
    for name in ("获取验证码", "改用人脸核验"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 60 and box["width"] >= 60
    font = page.get_by_label("姓名").evaluate("e => getComputedStyle(e).fontSize")
    assert float(font.removesuffix("px")) >= 18
    assert serious(page) == []
