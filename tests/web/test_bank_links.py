"""我的 → 银行账户: a bank starts a link for 张丽 (over the API, as its app would), and
she confirms it on the page, on a phone and in 长辈模式; the notice is a sentence."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from support.web import (
    PHONE,
    ZHANG_LI,
    ZHANG_LI_ID,
    ZHANG_XIAOYU,
    ZHANG_XIAOYU_ID,
    Server,
    close_page,
    log_in,
    new_page,
)

DEMO_BANK = ("qq_demo_bank", "demo-bank-secret-2026")


def bank_starts_link(server: Server, id_number: str, name: str, account: str) -> dict[str, Any]:
    with server.api() as api:
        r = api.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_BANK[0],
                "client_secret": DEMO_BANK[1],
            },
        )
        r.raise_for_status()
        bank = {"Authorization": "Bearer " + r.json()["access_token"]}
        r = api.post(
            "/bank-links",
            headers=bank,
            json={"account_number": account, "id_number": id_number, "name": name},
        )
        assert r.status_code == 202, r.text
        link: dict[str, Any] = r.json()
        family = api.get(f"/bank-links/{link['id']}/family", headers=bank)
        assert family.status_code == 404  # nothing of the person before she confirms
        link["bank"] = bank
        return link


def test_a_person_confirms_a_bank_link_on_a_phone(server: Server, page: Page) -> None:
    link = bank_starts_link(server, ZHANG_LI_ID, "张丽", "6214830000000017")
    log_in(page, server, ZHANG_LI)
    page.get_by_role("link", name="消息通知").first.click()
    notice = page.locator(".notice-item", has_text="6214********0017")
    expect(notice).to_contain_text(
        "示例银行 Demo Bank 申请将银行账户 6214********0017 关联您的医保账户"
    )
    notice.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("银行账户")
    card = page.locator(f"#bank-link-{link['id']}")
    expect(card).to_contain_text("待确认")
    button = card.get_by_role("button", name="确认关联")
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE  # fits the phone
    button.click()
    expect(page.locator(".notice.success")).to_have_text("您已确认，银行账户已关联医保账户。")
    expect(page.locator(f"#bank-link-{link['id']}")).to_contain_text("已关联")
    with server.api() as api:
        family = api.get(f"/bank-links/{link['id']}/family", headers=link["bank"])
        assert family.status_code == 200, family.text

    # In English, the notices read as sentences too.
    page.goto(server.url + "/prefs/lang?to=en")
    page.goto(server.url + "/me/notifications")
    expect(page.locator("main")).to_contain_text(
        "The bank account 6214********0017 (示例银行 Demo Bank) is now linked"
    )


def test_elder_mode_confirms_and_unlinks(server: Server, browser: Browser) -> None:
    link = bank_starts_link(server, ZHANG_XIAOYU_ID, "张小雨", "6214830000000025")
    tab = new_page(browser, PHONE)
    try:
        tab.context.add_cookies([{"name": "qq_elder", "value": "1", "url": server.url}])
        log_in(tab, server, ZHANG_XIAOYU)
        tab.get_by_role("link", name="银行账户").first.click()
        card = tab.locator(f"#bank-link-{link['id']}")
        expect(card).to_contain_text("待确认")
        button = card.get_by_role("button", name="确认关联")
        box = button.bounding_box()
        assert box is not None and box["height"] >= 60 and box["width"] >= 60
        size = button.evaluate("b => parseFloat(getComputedStyle(b).fontSize)")
        assert size >= 18
        button.click()
        expect(tab.locator(".notice.success")).to_be_visible()
        card = tab.locator(f"#bank-link-{link['id']}")
        expect(card).to_contain_text("已关联")
        card.get_by_role("button", name="解除关联").click()
        expect(tab.locator(".notice.success")).to_have_text("已解除这个银行账户的关联。")
        expect(tab.locator(f"#bank-link-{link['id']}")).to_contain_text("已解除")
    finally:
        close_page(tab)
