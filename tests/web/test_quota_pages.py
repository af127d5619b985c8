"""共济额度 in the browser: 王磊 (鄂尔多斯, employee) holds a mutual-aid link to his
father 王建军, insured in 广州 — beyond 鄂尔多斯's mutual-aid scope, so the link pays
only through a quota. On a phone, in 长辈模式: the member's page shows the quota, a
top-up beyond the personal account's balance is refused with the service's message
and moves nothing, a top-up goes through and shows in the balance and the history,
the resident contribution says it pays from the quota (refused while the quota is
short, with the way to add to it; paid from it once it is enough), the e-voucher and
the statement show the quota, and the father sees it read-only and is told. The
same pages in English.

The server's policy opens the next year's resident window all year (an operator's
national.toml), so the journey does not depend on today's date."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from qinqing.auth import service as auth
from qinqing.auth.models import PersonAccount
from qinqing.config import Env, Settings
from qinqing.entrypoints import demo
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.family import service as family
from qinqing.identity import ric
from qinqing.persons.service import find_by_id_number, new_person
from support.web import (
    PAYMENT_PASSWORD,
    PERSON_PASSWORD,
    PHONE,
    Server,
    close_page,
    link_id_of,
    live_server,
    log_in,
    new_page,
    seeded_copy,
)

AXE = Axe()
WANG_LEI = "13800000011"
WANG_LEI_ID = ric.with_check_digit("15060219880202003")
WANG_JIANJUN = "13900000011"
WANG_JIANJUN_ID = ric.with_check_digit("44010619600606005")
# What the demo collector's three monthly contributions (base 8,000 元) credit: 3 × 160 元.
FUNDED = "480.00 元"


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "national.toml").write_text(
        '[resident]\nenrollment_window = "01-01/12-31"\n', "utf-8"
    )
    yield {"QINQING_POLICY_DIR": str(Path(folder))}


def _add_wang_family(data_dir: Path, env: dict[str, str]) -> None:
    """王磊 and his father 王建军 (广州, resident), app accounts with payment passwords,
    bound with mutual aid through the family service (the link is via_quota)."""
    rt = build_runtime(
        Settings(
            data_dir=data_dir,
            env=Env.development,
            policy_dir=Path(env["QINQING_POLICY_DIR"]),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            argon2_parallelism=1,
        )
    )
    try:
        with rt.db.unit_of_work() as session:
            people = [
                (WANG_LEI_ID, "王磊", "150600", "employee", WANG_LEI),
                (WANG_JIANJUN_ID, "王建军", "440100", "resident", WANG_JIANJUN),
            ]
            for number, name, region, scheme, phone in people:
                session.add(
                    new_person(
                        rt.vault,
                        ident=ric.parse(number, date.today()),
                        name=name,
                        region_code=region,
                        scheme=scheme,
                        status="active",
                        phone=phone,
                        now=rt.clock.now(),
                    )
                )
            session.flush()
            persons = []
            for number, name, _region, _scheme, phone in people:
                auth.open_account(
                    session, rt, id_number=number, name=name, phone=phone, password=PERSON_PASSWORD
                )
                found = find_by_id_number(session, rt.vault, number)
                assert found is not None
                persons.append(found)
            session.flush()
            for account in session.query(PersonAccount).filter(
                PersonAccount.person_id.in_([p.id for p in persons])
            ):
                account.payment_password_hash = auth.passwords(rt).hash(PAYMENT_PASSWORD)
            holder, member = persons
            link = family.bind_persons(
                session,
                rt,
                actor=demo.DEMO_ACTOR,
                holder_id=holder.id,
                member_id=member.id,
                relation="father",
                mutual_aid=True,
            )
            if link.status != "active":
                family.activate(
                    session,
                    rt,
                    link,
                    holder,
                    member,
                    actor=demo.DEMO_ACTOR,
                    verification_method="demo",
                )
            assert link.via_quota
    finally:
        rt.db.dispose()


def _fund_wang_lei(server: Server) -> None:
    """Three months of contributions through the demo collector: 480.00 元."""
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
        for period in ("2024-01", "2024-02", "2024-03"):
            posted = api.post(
                "/contributions",
                json={"id_number": WANG_LEI_ID, "period": period, "base_fen": 800_000},
                headers=headers,
            )
            assert posted.status_code == 201, posted.text


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    server_env: dict[str, str],
    seeded_data: Callable[[dict[str, str]], Path],
) -> Iterator[Server]:
    data_dir = seeded_copy(seeded_data(server_env), tmp_path_factory.mktemp("web"))
    _add_wang_family(data_dir, server_env)
    with live_server(data_dir, server_env, seeded=True) as running:
        _fund_wang_lei(running)
        yield running


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
    assert box is not None and box["width"] >= 60 and box["height"] >= 60, box
    assert _px(page, selector, "font-size") >= 18


def _fits_the_phone(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE, f"{page.url} is {width} px wide"


def _elder(page: Page, server: Server) -> None:
    page.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])


def _open_father(page: Page, server: Server) -> str:
    page.goto(server.url + "/me/family")
    link_id = link_id_of(page, "王建军")
    page.goto(f"{server.url}/family/links/{link_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("王建军")
    return link_id


def _top_up(page: Page, amount: str) -> None:
    page.get_by_label("转入金额（元）").fill(amount)
    page.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
    page.get_by_role("button", name="确认转入").click()


def test_holder_fills_the_quota_and_pays_resident_insurance_from_it(
    server: Server, browser: Browser
) -> None:
    next_year = datetime.now(timezone(timedelta(hours=8))).year + 1
    tab = new_page(browser, PHONE)
    try:
        _elder(tab, server)
        log_in(tab, server, WANG_LEI)
        _open_father(tab, server)

        # The member's page: the quota, empty, with what it means and how to fill it.
        card = tab.locator("#quota")
        expect(card.get_by_role("heading", name="共济额度")).to_be_visible()
        expect(card).to_contain_text("可用额度")
        expect(card).to_contain_text("0.00 元")
        expect(card).to_contain_text("额度内的钱您不能再使用")
        expect(card).to_contain_text("未用完的额度退回您的个人账户")
        _big_enough(tab, "#quota-button")
        _fits_the_phone(tab)
        tab.locator("#quota-button").click()

        expect(tab.get_by_role("heading", level=1)).to_have_text("共济额度")
        expect(tab.locator("#quota-explained")).to_contain_text("王建军 在广州市参保")
        expect(tab.locator("main")).to_contain_text(f"您的个人账户可用金额：{FUNDED}")
        expect(tab.locator("main")).to_contain_text("还没有转入或使用记录。")
        _big_enough(tab, "#confirm-top-up")
        assert _px(tab, "main p", "font-size") >= 18
        assert _px(tab, "main p", "line-height") >= 1.3 * _px(tab, "main p", "font-size")
        _fits_the_phone(tab)
        assert serious(tab) == []

        # More than the personal account has: the service's refusal, nothing moves.
        _top_up(tab, "1000")
        expect(tab.locator(".error-summary")).to_contain_text("绑定人个人账户可用余额不足。")
        expect(tab.locator("#amount")).to_have_attribute("aria-invalid", "true")
        expect(tab.locator("#quota-available")).to_have_text("0.00 元")
        expect(tab.locator("main")).to_contain_text(f"您的个人账户可用金额：{FUNDED}")
        assert serious(tab) == []

        # 100 元 goes in: the balance, the available amount and the history say so.
        _top_up(tab, "100")
        expect(tab.get_by_role("status")).to_contain_text("已转入共济额度。")
        expect(tab.locator("#quota-balance")).to_have_text("100.00 元")
        expect(tab.locator("#quota-available")).to_have_text("100.00 元")
        expect(tab.locator("main")).to_contain_text("您的个人账户可用金额：380.00 元")
        row = tab.locator("#quota-history tbody tr").first
        expect(row).to_contain_text("转入共济额度")
        expect(row).to_contain_text("+100.00 元")
        expect(row).to_contain_text("北京时间")
        _fits_the_phone(tab)

        # The resident contribution pays from the quota, which is short of 400 元.
        tab.get_by_role("link", name="返回").click()
        expect(tab.locator("#link-quota-available")).to_have_text("100.00 元")
        tab.get_by_role("link", name="为家人缴纳居民医保").click()
        expect(tab.locator("#resident-from-quota")).to_contain_text("共济额度可用：100.00 元")
        expect(tab.locator("main")).to_contain_text("钱会立即从共济额度中扣除")
        expect(tab.locator(f"#terms-{next_year}")).to_contain_text("400.00 元")
        tab.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        tab.get_by_role("button", name="确认缴费").click()
        expect(tab.locator(".error-summary")).to_contain_text(
            "绑定人为该家庭成员设立的共济额度不足以支付本笔金额。"
        )
        _fits_the_phone(tab)
        assert serious(tab) == []
        tab.get_by_role("link", name="额度不够，先转入共济额度").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("共济额度")
        _top_up(tab, "350.00")
        expect(tab.locator("#quota-available")).to_have_text("450.00 元")

        tab.get_by_role("link", name="返回").click()
        tab.get_by_role("link", name="为家人缴纳居民医保").click()
        tab.get_by_label("支付密码").fill(PAYMENT_PASSWORD)
        tab.get_by_role("button", name="确认缴费").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("居民医保缴费凭证")
        expect(tab.locator("#resident-paid")).to_contain_text(
            f"您已为 王建军 缴纳 {next_year} 年度城乡居民医保"
        )

        # The quota paid it; the personal account did not move.
        link_id = _open_father(tab, server)
        expect(tab.locator("#link-quota-available")).to_have_text("50.00 元")
        tab.goto(f"{server.url}/family/links/{link_id}/quota")
        history = tab.locator("#quota-history tbody tr")
        expect(history).to_have_count(3)
        expect(history.first).to_contain_text("缴纳居民医保")
        expect(history.first).to_contain_text("-400.00 元")
        expect(tab.locator("main")).to_contain_text("您的个人账户可用金额：30.00 元")

        # The statement: the two moves into the quota, and what the quota has left.
        tab.goto(server.url + "/me/account")
        expect(tab.get_by_role("link", name="转入共济额度")).to_have_count(2)
        expect(tab.locator("main")).to_contain_text("为 王建军 设立")
        expect(tab.locator("main")).to_contain_text("-350.00 元")
        expect(tab.locator("#quotas")).to_have_text("为家人设立的共济额度")
        quotas = tab.locator("#quotas + p + table")
        expect(quotas).to_contain_text("王建军")
        expect(quotas).to_contain_text("50.00 元")
        _fits_the_phone(tab)
        assert serious(tab) == []

        # The e-voucher tells the hospital the member pays from a quota.
        _open_father(tab, server)
        tab.get_by_role("button", name="出示电子凭证").click()
        expect(tab.locator("#voucher-quota")).to_contain_text("共济额度可用")
        expect(tab.locator("#voucher-quota")).to_contain_text("50.00 元")
        _fits_the_phone(tab)
    finally:
        close_page(tab)
    the_father_is_told(server, browser)


def the_father_is_told(server: Server, browser: Browser) -> None:
    tab = new_page(browser, PHONE)
    try:
        log_in(tab, server, WANG_JIANJUN)
        tab.goto(server.url + "/me/notifications")
        notice = tab.get_by_role(
            "link", name=re.compile("王磊 向为您设立的共济额度转入了 100.00 元，额度余额 100.00 元")
        )
        expect(notice).to_be_visible()
        notice.click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("共济额度")
        expect(tab.locator("#quota-available")).to_have_text("50.00 元")
    finally:
        close_page(tab)


def test_the_member_sees_the_quota_read_only(server: Server, browser: Browser) -> None:
    tab = new_page(browser, PHONE)
    try:
        _elder(tab, server)
        log_in(tab, server, WANG_JIANJUN)
        link_id = _open_father_as_member(tab, server)
        card = tab.locator("#quota")
        expect(card).to_contain_text("可用额度")
        expect(card).to_contain_text("您的医保费用从 王磊 为您设立的共济额度中支付")
        expect(tab.locator("#quota-button")).to_have_count(0)
        tab.get_by_role("link", name="查看额度明细").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("共济额度")
        expect(tab.locator(".lead")).to_contain_text("王磊 为您设立的共济额度")
        expect(tab.locator("#quota-explained")).to_contain_text("只有 王磊 可以转入")
        expect(tab.locator("form[action$='/quota']")).to_have_count(0)
        expect(tab.get_by_label("转入金额（元）")).to_have_count(0)
        _fits_the_phone(tab)
        assert serious(tab) == []
        assert link_id in tab.url
    finally:
        close_page(tab)


def _open_father_as_member(page: Page, server: Server) -> str:
    page.goto(server.url + "/me/family")
    link_id = link_id_of(page, "王磊")
    page.goto(f"{server.url}/family/links/{link_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("王磊")
    return link_id


def test_the_quota_pages_in_english(server: Server, page: Page) -> None:
    log_in(page, server, WANG_LEI)
    link_id = _open_father(page, server)
    page.get_by_role("link", name="English").click()
    card = page.locator("#quota")
    expect(card.get_by_role("heading", name="Mutual-aid quota")).to_be_visible()
    expect(card).to_contain_text("Available")
    expect(page.get_by_role("link", name="Add to the mutual-aid quota")).to_be_visible()
    page.goto(f"{server.url}/family/links/{link_id}/quota")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mutual-aid quota")
    expect(page.locator("#quota-explained")).to_contain_text("王建军 is insured in 广州市")
    expect(page.get_by_label("Amount (yuan)")).to_be_visible()
    # A typo is the page's own message, in English, at its field.
    page.get_by_label("Amount (yuan)").fill("12.345")
    page.get_by_label("Payment password").fill(PAYMENT_PASSWORD)
    page.get_by_role("button", name="Confirm the transfer").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "Enter the amount to move, for example 500 or 500.50"
    )
    _fits_the_phone(page)
    assert serious(page) == []
    page.goto(server.url + "/me/account")
    expect(page.locator("#quotas")).to_have_text("Mutual-aid quotas set aside for family members")
    expect(page.locator("#quotas + p + table")).to_contain_text("王建军")
