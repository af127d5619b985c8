"""A minor's guardianship proof in the browser (docs/web.md "Guardianship proof").

张丽 is no guardian on the household register of the children seeded here
(张伟 and 李娜 are): each binding she makes waits for proof (``pending_proof``).
She uploads a small PNG that a reviewer of 鄂尔多斯 (the children's region) sees
inline and approves; another upload is rejected and she sees why; a clerk of
鄂尔多斯 records a 户口本 seen at the counter and prints the receipt; the
upload works in 长辈模式 too; and the registered guardian 李娜 is told who
bound her child (masked) and how to object.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from qinqing.audit.actor import Actor
from qinqing.auth import service as auth
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.identity import ric
from qinqing.persons.service import new_person
from support.guardians import register_guardians
from support.web import (
    CLERK,
    DESKTOP,
    LI_NA,
    STAFF_PASSWORD,
    ZHANG_LI,
    Server,
    StartingServer,
    close_page,
    log_in,
    new_page,
)

AXE = Axe()
REVIEWER_EEDS = "eeds-reviewer"  # a reviewer of 鄂尔多斯 (150600), the children's region
ZHANG_WEI_ID = ric.with_check_digit("15060219850312003")
LI_NA_ID = ric.with_check_digit("15060219870721004")
# Young children of 鄂尔多斯 whose household register names 张伟 and 李娜.
CHILDREN = {
    "approve": ("张小明", ric.with_check_digit("15060220180301003")),
    "reject": ("张小红", ric.with_check_digit("15060220180402004")),
    "counter": ("张小军", ric.with_check_digit("15060220180503005")),
    "elder": ("张小兰", ric.with_check_digit("15060220190604006")),
    "guardian": ("张小强", ric.with_check_digit("15060220200705007")),
}
FORM_NUMBER = "EEDS-PROOF-0815"
SEEDER = Actor("operator", "pytest", "admin")


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A real (decodable) PNG, so the reviewer's <img> has something to show."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x1f\x6f\xb4" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _seed_children(data_dir: Path) -> None:
    """The children (no app account) and a reviewer of their region, written into the
    running server's SQLite database as the registry import and `staff add` would."""
    settings = Settings(
        data_dir=data_dir,
        env=Env.development,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    rt = build_runtime(settings)
    try:
        with rt.db.unit_of_work() as session:
            for name, number in CHILDREN.values():
                session.add(
                    new_person(
                        rt.vault,
                        ident=ric.parse(number, date.today()),
                        name=name,
                        region_code="150600",
                        scheme="resident",
                        status="active",
                        phone=None,
                        now=rt.clock.now(),
                    )
                )
            auth.add_staff(
                session,
                rt,
                username=REVIEWER_EEDS,
                role="reviewer",
                region_code="150600",
                password=STAFF_PASSWORD,
                actor=SEEDER,
            )
        for _name, number in CHILDREN.values():
            register_guardians(rt, number, ZHANG_WEI_ID, LI_NA_ID)
    finally:
        rt.db.dispose()


@pytest.fixture(scope="module")
def server(fresh_server: Callable[[dict[str, str]], StartingServer]) -> Iterator[Server]:
    starting = fresh_server({})
    try:
        running = starting.wait()
        _seed_children(running.data_dir)
        yield running
    finally:
        starting.stop()


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def fits(page: Page) -> bool:
    """Nothing runs off the side of a 390 px phone."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    return bool(width <= viewport["width"])


def bind_child(page: Page, server: Server, which: str) -> str:
    """张丽 (logged in) binds the child as her own; returns the link page's address."""
    name, number = CHILDREN[which]
    page.goto(server.url + "/me/family/add")
    page.get_by_label("家人姓名").fill(name)
    page.get_by_label("家人身份证号码").fill(number)
    page.get_by_label("子女", exact=True).check()
    page.get_by_role("button", name="提交绑定申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return page.url.split("?")[0]


def upload_png(page: Page) -> None:
    page.get_by_label("出生医学证明").check()
    page.locator("#file").set_input_files(
        files=[{"name": "birth-certificate.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    page.get_by_role("button", name="提交监护证明").click()


def reviewer_opens(browser: Browser, server: Server, child: str) -> Page:
    reviewer = new_page(browser, DESKTOP)
    log_in(reviewer, server, REVIEWER_EEDS, STAFF_PASSWORD)
    expect(reviewer.get_by_role("heading", level=1)).to_have_text("解绑审核")
    row = reviewer.locator("#proof-queue tbody tr", has_text=child)
    expect(row).to_contain_text("张丽")
    expect(row).to_contain_text("出生医学证明")
    row.get_by_role("link", name=re.compile("审核")).click()
    expect(reviewer.get_by_role("heading", level=1)).to_have_text("审核监护证明")
    return reviewer


def test_upload_then_the_reviewer_approves(server: Server, page: Page, browser: Browser) -> None:
    child, child_number = CHILDREN["approve"]
    log_in(page, server, ZHANG_LI)
    page.goto(server.url + "/me/family/add")
    # Before submitting: who binds at once, and what anyone else will have to show.
    main = page.locator("main")
    expect(main).to_contain_text("户口本上登记的孩子监护人（通常是父母）绑定后立即生效")
    expect(main).to_contain_text("出生医学证明、户口本或监护证明（法院判决或裁定）")
    expect(main).to_contain_text("孩子参保地的医保经办机构窗口")
    assert serious(page) == [] and fits(page)

    link_url = bind_child(page, server, "approve")
    expect(main).to_contain_text("还需要证明您是孩子的监护人")
    expect(main.locator(".tag").first).to_have_text("待提交监护证明")
    # A pending link allows nothing yet: no e-voucher, no payments.
    expect(main).to_contain_text("不能出示孩子的医保电子凭证")
    expect(page.get_by_role("button", name="出示电子凭证")).to_have_count(0)
    expect(page.get_by_role("link", name="解除绑定")).to_have_count(0)
    expect(main).not_to_contain_text("今年的共济支付")
    expect(main).to_contain_text("方式二：到窗口办理")
    expect(page.locator("#file")).to_have_attribute(
        "accept", "image/jpeg,image/png,application/pdf"
    )
    assert serious(page) == [] and fits(page)

    # Nothing chosen: the error summary says what is missing, at its fields.
    page.get_by_role("button", name="提交监护证明").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("请选择证明材料的类型")
    expect(summary).to_contain_text("请选择要上传的照片或 PDF 文件")
    expect(page).to_have_title(re.compile("^错误："))

    upload_png(page)
    expect(main).to_contain_text("监护证明已提交，正在等待经办机构审核")
    expect(main.locator(".tag").first).to_have_text("监护证明审核中")
    expect(page.locator("#file")).to_have_count(0)  # sent once; no second upload offered

    reviewer = reviewer_opens(browser, server, child)
    try:
        detail = reviewer.locator("main")
        expect(detail).to_contain_text("张丽")
        expect(detail).to_contain_text(child_number[:6] + "********" + child_number[-4:])
        assert child_number not in reviewer.content()
        image = reviewer.locator(".proof-document img")
        expect(image).to_be_visible()
        # decode() waits for the picture to arrive (visible is not loaded) and fails if it
        # cannot be decoded, so a broken proof image still fails here.
        assert image.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 24
        src = image.get_attribute("src") or ""
        document = reviewer.request.get(server.url + src)
        assert document.status == 200 and document.body() == tiny_png()
        headers = document.headers
        assert headers["content-type"] == "image/png"
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-disposition"] == "inline"
        assert serious(reviewer) == []

        reviewer.get_by_label("通过：这条绑定生效").check()
        reviewer.get_by_role("button", name="提交审核结果").click()
        expect(detail).to_contain_text("审核结果已提交，绑定人会收到通知。")
        expect(detail).to_contain_text("已通过")
        reviewer.get_by_role("link", name="返回待审核列表").click()
        expect(reviewer.locator("#proofs")).to_be_visible()
        expect(reviewer.locator("#proofs tbody tr", has_text=child)).to_have_count(0)
    finally:
        close_page(reviewer)

    # The holder never reaches the file; the link is now active, with its e-voucher.
    assert page.request.get(server.url + src).status == 403
    page.goto(link_url)
    expect(main.locator(".tag").first).to_have_text("已生效")
    expect(page.get_by_role("button", name="出示电子凭证")).to_be_visible()
    page.goto(server.url + "/me/notifications")
    expect(main).to_contain_text(f"监护证明已通过，您与 {child} 的亲情关系已生效。")


def test_a_rejection_ends_the_link_and_says_why(
    server: Server, page: Page, browser: Browser
) -> None:
    child, _number = CHILDREN["reject"]
    log_in(page, server, ZHANG_LI)
    link_url = bind_child(page, server, "reject")
    upload_png(page)
    expect(page.locator("main")).to_contain_text("监护证明已提交")

    reviewer = reviewer_opens(browser, server, child)
    try:
        reviewer.get_by_label("驳回：这条绑定申请结束").check()
        reviewer.get_by_role("button", name="提交审核结果").click()
        # The service's rule: a rejection needs a comment; shown at the comment field.
        expect(reviewer.locator(".error-summary")).to_contain_text("驳回时请填写审核意见")
        expect(reviewer.locator(".error-summary a")).to_have_attribute("href", "#comment")
        reviewer.get_by_label("审核意见").fill("照片上看不清孩子的姓名，请到窗口办理")
        reviewer.get_by_role("button", name="提交审核结果").click()
        expect(reviewer.locator("main")).to_contain_text("未通过")
    finally:
        close_page(reviewer)

    page.goto(link_url)
    main = page.locator("main")
    expect(main.locator(".tag").first).to_have_text("已解除")
    rejected = page.locator("#proof-rejected")
    expect(rejected).to_contain_text("监护证明未通过审核")
    expect(rejected).to_contain_text("照片上看不清孩子的姓名，请到窗口办理")
    expect(page.locator("#file")).to_have_count(0)
    assert serious(page) == [] and fits(page)
    page.goto(server.url + "/me/notifications")
    expect(main).to_contain_text(f"监护证明未通过审核，绑定 {child} 的申请已结束。")
    main.get_by_role("link", name=re.compile(f"^监护证明未通过审核，绑定 {child}")).click()
    expect(page.locator("#proof-rejected")).to_be_visible()


def test_a_clerk_checks_the_proof_at_the_counter(
    server: Server, page: Page, browser: Browser
) -> None:
    child, child_number = CHILDREN["counter"]
    log_in(page, server, ZHANG_LI)
    link_url = bind_child(page, server, "counter")

    clerk = new_page(browser)
    try:
        log_in(clerk, server, CLERK, STAFF_PASSWORD)
        clerk.get_by_label("身份证号码").fill(child_number)
        clerk.get_by_role("button", name="查询").click()
        expect(clerk.get_by_role("heading", level=1)).to_have_text(child)
        card = clerk.locator(".link-card", has_text="张丽")
        expect(card).to_contain_text("待提交监护证明")
        card.get_by_role("link", name=re.compile("查验监护证明")).click()
        expect(clerk.get_by_role("heading", level=1)).to_have_text("查验监护证明")
        assert serious(clerk) == [] and fits(clerk)

        # A mobile number typed as the form number is refused; nothing changes.
        clerk.get_by_label("户口本").check()
        clerk.get_by_label("证明材料编号").fill("HK150602-7731")
        clerk.get_by_label("申请表编号").fill("13800000001")
        clerk.get_by_role("button", name="确认查验").click()
        summary = clerk.locator(".error-summary")
        expect(summary).to_contain_text("申请表编号不正确")
        expect(summary.get_by_role("link")).to_have_attribute("href", "#form_number")

        clerk.get_by_label("证明材料编号").fill("HK150602-7731")
        clerk.get_by_label("申请表编号").fill(FORM_NUMBER)
        clerk.get_by_role("button", name="确认查验").click()
        expect(clerk.get_by_role("heading", level=1)).to_have_text("监护证明已查验")
        main = clerk.locator("main")
        expect(main).to_contain_text(FORM_NUMBER)
        expect(main).to_contain_text("户口本")
        expect(main).to_contain_text("*********7731")
        assert "HK150602-7731" not in clerk.content()
        assert serious(clerk) == [] and fits(clerk)

        with clerk.expect_download() as download:
            clerk.get_by_role("link", name="打印回执").click()
        pdf = download.value.path().read_bytes()
        assert pdf.startswith(b"%PDF-")
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "户口本" in text and FORM_NUMBER in text
        assert "监护关系查验回执" in text

        clerk.get_by_role("link", name="返回查询结果").click()
        expect(clerk.locator(".link-card", has_text="张丽")).to_contain_text("已生效")
    finally:
        close_page(clerk)

    page.goto(link_url)
    expect(page.locator("main .tag").first).to_have_text("已生效")


def _px(page: Page, selector: str, prop: str) -> float:
    value = page.locator(selector).first.evaluate(
        f"(el) => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return float(str(value).removesuffix("px"))


def _targets_at_least_60(page: Page, selector: str) -> None:
    for target in page.locator(selector).all():
        if target.is_visible():
            box = target.bounding_box()
            assert box is not None, target.inner_text()
            assert box["height"] >= 60 and box["width"] >= 60, target.inner_text()


def test_the_upload_in_elder_mode(server: Server, page: Page) -> None:
    page.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
    log_in(page, server, ZHANG_LI)
    page.goto(server.url + "/me/family/add")
    expect(page.locator("html")).to_have_class("elder")
    expect(page.locator("main")).to_contain_text("户口本上登记的孩子监护人")
    assert _px(page, "main .notice p", "font-size") >= 18

    bind_child(page, server, "elder")
    main = page.locator("main")
    expect(main).to_contain_text("证明您是孩子的监护人")
    assert _px(page, "#proof p", "font-size") >= 18
    assert _px(page, "#proof p", "line-height") >= 1.3 * _px(page, "#proof p", "font-size")
    assert _px(page, "#upload-proof", "font-size") >= 18
    for row in page.locator("#proof .radio").all():
        box = row.bounding_box()
        assert box is not None and box["height"] >= 60
    field = page.locator("#file").bounding_box()
    assert field is not None and field["height"] >= 60
    _targets_at_least_60(page, "main a, main button, footer a")
    assert serious(page) == [] and fits(page)

    upload_png(page)
    expect(main).to_contain_text("监护证明已提交")
    expect(main.locator(".tag").first).to_have_text("监护证明审核中")
    _targets_at_least_60(page, "main a, main button, footer a")
    assert serious(page) == [] and fits(page)

    page.goto(server.url + "/me/family")
    card = page.locator(".link-card", has_text="张小兰")
    expect(card).to_contain_text("监护证明审核中")


def test_the_registered_guardian_is_told_who_and_how_to_object(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_LI)
    bind_child(page, server, "guardian")
    page.context.clear_cookies()
    log_in(page, server, LI_NA)
    page.goto(server.url + "/me/notifications")
    notice = page.locator(".notice-item", has_text="申请将您监护的孩子").first
    expect(notice).to_contain_text("张* 申请将您监护的孩子 张** 绑定为家庭成员")
    expect(notice).to_contain_text("携带户口本到孩子参保地的医保经办机构窗口申请解除")
    expect(notice).to_contain_text("12333")
    expect(notice.get_by_role("link")).to_have_count(0)  # no party: no link page to open
    assert "张丽" not in notice.inner_text()
