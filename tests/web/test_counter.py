"""The counter desk (窗口办理): a clerk of 鄂尔多斯市 finds 张伟 by ID number, sees the
unbind check's blockers for each party, unbinds his link to his mother on his
behalf with his ID card and the paper form's number (after a mistyped form
number and a document that is not his), downloads the receipt PDF, and binds
张丽 and her daughter 张小雨, who came in together."""

from __future__ import annotations

import io
import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from qinqing.identity import ric
from support.web import (
    CLERK,
    STAFF_PASSWORD,
    ZHANG_LI_ID,
    ZHANG_WEI,
    ZHANG_XIAOYU_ID,
    Server,
    log_in,
)

AXE = Axe()
ZHANG_WEI_ID = ric.with_check_digit("15060219850312003")
LI_NA_ID = ric.with_check_digit("15060219870721004")
FORM_NUMBER = "EEDS-2026-0815"


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def look_up(page: Page, id_number: str) -> None:
    page.get_by_label("身份证号码").fill(id_number)
    page.get_by_role("button", name="查询").click()


def test_counter_unbind_with_receipt(server: Server, page: Page) -> None:
    log_in(page, server, CLERK, STAFF_PASSWORD)
    # A clerk lands on the counter desk, not on a placeholder.
    assert page.url == server.url + "/counter"
    expect(page.get_by_role("heading", level=1)).to_have_text("窗口办理")
    assert serious(page) == []

    look_up(page, ZHANG_WEI_ID)
    expect(page.get_by_role("heading", level=1)).to_have_text("张伟")
    # The ID number travels in the form body only, never in an address.
    assert ZHANG_WEI_ID not in page.url
    expect(page.locator("main")).to_contain_text(ZHANG_WEI_ID)  # in full: his region
    expect(page.locator("main")).to_contain_text("正常参保")
    assert serious(page) == []

    # 李娜's link: the open hospital bill blocks, as in the app.
    page.locator(".link-card", has_text="李娜").get_by_role(
        "link", name=re.compile("代为解除")
    ).click()
    expect(page.locator(".blocker[data-code=UNSETTLED_PAYMENTS]")).to_be_visible()
    expect(page.get_by_role("button", name="确认解除")).to_have_count(0)

    page.get_by_role("link", name=re.compile("返回")).first.click()
    mother = page.locator(".link-card", has_text="王秀英")
    mother.get_by_role("link", name=re.compile("代为解除")).click()
    # On the mother's behalf: she is in arrears, and Ordos blocks unbinding then.
    page.get_by_role("link", name=re.compile("改为代 王秀英 办理")).click()
    expect(page.locator(".blocker[data-code=ACCOUNT_IN_ARREARS]")).to_be_visible()
    assert serious(page) == []
    # On 张伟's own behalf every condition is met.
    page.get_by_role("link", name=re.compile("改为代 张伟 办理")).click()
    expect(page.locator("main")).to_contain_text("已满足全部解除条件")
    assert serious(page) == []

    # A mobile number typed as the form number is refused, nothing changes.
    page.get_by_label("证件号码").fill(ZHANG_WEI_ID)
    page.get_by_label("申请表编号").fill("13800000001")
    page.get_by_role("button", name="确认解除").click()
    expect(page.locator(".error-summary")).to_contain_text("申请表编号不正确")
    expect(page).to_have_title(re.compile("^错误："))

    # A document that is not his: a failed verification with the attempts left.
    page.get_by_label("证件号码").fill(LI_NA_ID)
    page.get_by_label("申请表编号").fill(FORM_NUMBER)
    page.get_by_role("button", name="确认解除").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("证件号码与办理人不一致")
    expect(summary).to_contain_text("还可尝试 4 次")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#document_number")
    assert serious(page) == []

    page.get_by_label("社会保障卡").check()
    page.get_by_label("证件号码").fill(ZHANG_WEI_ID)
    page.get_by_label("申请表编号").fill(FORM_NUMBER)
    page.get_by_role("button", name="确认解除").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("解除成功")
    main = page.locator("main")
    expect(main).to_contain_text(FORM_NUMBER)
    expect(main).to_contain_text("150602********0034")  # masked on the outcome
    assert ZHANG_WEI_ID not in page.content()
    assert serious(page) == []

    with page.expect_download() as download:
        page.get_by_role("link", name="打印回执").click()
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert FORM_NUMBER in text
    assert "解除成功" in text

    assert ZHANG_WEI_ID not in (server.data_dir / "server.log").read_text("utf-8", "replace")

    # Back on his record the link is ended.
    page.get_by_role("link", name="返回查询结果").click()
    expect(page.locator(".link-card", has_text="王秀英")).to_contain_text("已解除")


def test_counter_binds_a_family_that_came_together(server: Server, page: Page) -> None:
    log_in(page, server, CLERK, STAFF_PASSWORD)
    page.get_by_role("link", name=re.compile("代为绑定")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("代为绑定")
    page.get_by_role("button", name="确认绑定").click()
    expect(page.locator(".error-summary li")).to_have_count(6)
    assert serious(page) == []

    holder = page.get_by_role("group", name=re.compile("绑定人"))
    holder.get_by_label("姓名").fill("张丽")
    holder.get_by_label("证件号码").fill(ZHANG_LI_ID)
    member = page.get_by_role("group", name="家庭成员", exact=True)
    member.get_by_label("姓名").fill("张小雨")
    member.get_by_label("社会保障卡").check()
    member.get_by_label("证件号码").fill(ZHANG_XIAOYU_ID)
    page.get_by_role("group", name="家庭成员是绑定人的").get_by_label("子女", exact=True).check()
    page.get_by_label("申请表编号").fill("EEDS-BIND-0001")
    page.get_by_role("button", name="确认绑定").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("张丽")
    expect(page.locator(".notice.success")).to_contain_text("绑定成功")
    expect(page.locator(".link-card", has_text="张小雨")).to_contain_text("已生效")


def test_a_language_switch_on_a_record_starts_a_new_look_up(server: Server, page: Page) -> None:
    log_in(page, server, CLERK, STAFF_PASSWORD)
    look_up(page, ZHANG_WEI_ID)
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Counter desk")
    assert serious(page) == []


def test_the_counter_is_for_clerks_only(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    response = page.goto(server.url + "/counter")
    assert response is not None and response.status == 403
    page.context.clear_cookies()
    page.goto(server.url + "/counter")
    assert "/login" in page.url
