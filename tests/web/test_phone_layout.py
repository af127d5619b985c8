"""On a 390-px phone, in 中文, English and 长辈模式: the navigation is one row whose
items never break, a person's name never breaks inside (张建 / 国), no paragraph
leaves one character on its last line (件, 除。); 长辈模式 keeps the "call 12333"
help on a blocked unbind; an ended link says when it ended instead of showing
家庭共济 and this year's use.

Line boxes are measured in the browser (a Range over the text): what a person
sees, whatever the fonts. The fonts of a test machine are often narrower than a
phone's CJK fonts, so names are also checked at narrower widths, where a break
shows up with any font."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from support.web import (
    PAYMENT_PASSWORD,
    PHONE,
    ZHANG_WEI,
    Server,
    api_token,
    link_id_of,
    log_in,
)

# Each element's text (its innerText) and its lines: [text, [[top, text], ...]].
LINES = """(els) => els.map((el) => {
  const chars = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (let i = 0; i < n.data.length; i++) {
      if (/\\s/.test(n.data[i])) continue;
      const r = document.createRange();
      r.setStart(n, i);
      r.setEnd(n, i + 1);
      const rect = r.getClientRects()[0];
      if (rect && rect.width > 0) chars.push([rect.top, n.data[i]]);
    }
  }
  const lines = [];
  for (const [top, ch] of chars) {
    if (!lines.length || Math.abs(lines[lines.length - 1][0] - top) > 3) lines.push([top, ""]);
    lines[lines.length - 1][1] += ch;
  }
  return [el.innerText, lines];
})"""
VISIBLE = "(els) => els.filter((e) => e.getClientRects().length > 0).length"
PUNCTUATION = re.compile(r"[。，、；：！？）」”…,.;:!?)]")


def _lines(page: Page, selector: str) -> list[tuple[str, list[str]]]:
    """(text, its lines) of every visible element matching ``selector``: Playwright's
    own visibility test (``visible=true``, what ``is_visible`` asks), then the text and
    the lines of all of them in one call into the page, not three per element."""
    found = page.locator(selector).locator("visible=true").evaluate_all(LINES)
    return [(text, [line for _top, line in lines]) for text, lines in found]


def _mode(page: Page, server: Server, mode: str) -> None:
    """Switch to zh, en or elder (长辈模式, in Chinese) from wherever the page is."""
    page.goto(server.url + "/me")
    html = page.locator("html")
    lang = html.get_attribute("lang")
    elder = "elder" in (html.get_attribute("class") or "")
    if (mode == "en") != (lang == "en"):
        page.get_by_role("link", name="English" if mode == "en" else "中文").click()
    if (mode == "elder") != elder:
        page.locator("a[data-pref=elder]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en" if mode == "en" else "zh-CN")


def _family_paths(page: Page, server: Server) -> list[str]:
    page.goto(server.url + "/me/family")
    hrefs = [a.get_attribute("href") or "" for a in page.locator("a.link-card-main").all()]
    links = [h for h in hrefs if h.startswith("/family/links/")]
    assert links
    return [
        "/me",
        "/me/family",
        "/me/notifications",
        "/me/account",
        *links,
        *[f"{h}/unbind" for h in links],
    ]


def test_the_navigation_is_one_row_and_no_item_wraps(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    for mode in ("zh", "en", "elder"):
        _mode(page, server, mode)
        page.goto(server.url + "/me/family")
        items = _lines(page, ".main-nav li a, .main-nav .link-button")
        assert len(items) >= 3, (mode, items)
        for text, lines in items:
            assert len(lines) == 1, (mode, text, lines)
        tops = {
            round(box["y"])
            for item in page.locator(".main-nav li a, .main-nav .link-button").all()
            if item.is_visible() and (box := item.bounding_box()) is not None
        }
        assert len(tops) == 1, (mode, "the navigation wraps onto a second row", tops)
        box = page.locator(".main-nav").bounding_box()
        assert box is not None and box["width"] <= PHONE


def _broken_names(page: Page) -> list[Any]:
    return [(text, lines) for text, lines in _lines(page, ".nm") if len(lines) > 1]


def test_names_stay_on_one_line(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    paths = _family_paths(page, server)
    for mode in ("zh", "en", "elder"):
        _mode(page, server, mode)
        seen = 0
        for path in paths:
            page.goto(server.url + path)
            seen += page.locator(".nm").evaluate_all(VISIBLE)
            assert not _broken_names(page), (mode, path, _broken_names(page))
            if mode != "en" and path.endswith(("/unbind", "/notifications", "/account")):
                # Narrower phones too: with any font a name meets a line end somewhere.
                for width in range(280, PHONE, 6):
                    page.set_viewport_size({"width": width, "height": 844})
                    assert not _broken_names(page), (mode, path, width, _broken_names(page))
                page.set_viewport_size({"width": PHONE, "height": 844})
        assert seen > 10, (mode, seen)


def test_no_paragraph_ends_with_a_single_character(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    paths = [*_family_paths(page, server), "/help"]
    for mode in ("zh", "elder"):
        _mode(page, server, mode)
        for path in paths:
            page.goto(server.url + path)
            for _text, lines in _lines(
                page, "main p, main li, main dd, main h1, main h2, main h3, main td"
            ):
                if len(lines) < 2:
                    continue
                last = PUNCTUATION.sub("", lines[-1])
                assert len(last) > 1, (mode, path, " / ".join(lines))


def test_elder_mode_keeps_the_12333_help_on_a_blocked_unbind(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    _mode(page, server, "elder")
    page.goto(server.url + "/me/family")
    page.get_by_role("link", name=re.compile("李娜")).click()  # an unsettled hospital bill
    page.get_by_role("link", name="解除绑定").click()
    expect(page.locator(".blocker")).to_have_count(1)
    help_text = page.locator("main").get_by_text("拨打 12333")
    expect(help_text).to_be_visible()
    expect(help_text).to_contain_text("医保经办机构窗口")


def test_an_ended_link_says_when_it_ended_not_mutual_aid(server: Server, page: Page) -> None:
    log_in(page, server, ZHANG_WEI)
    _mode(page, server, "zh")
    page.goto(server.url + "/me/family")
    link_id = link_id_of(page, "张子涵")  # active, with 家庭共济
    card = page.locator("li.link-card", has=page.locator(f"a[href='/family/links/{link_id}']"))
    expect(card.locator(".tag-aid")).to_have_text("家庭共济")
    with server.api() as api:
        ended = api.post(
            f"/family/links/{link_id}/unbind",
            headers=api_token(server, ZHANG_WEI),
            json={
                "verification": {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}
            },
        )
    assert ended.status_code == 200 and ended.json()["link"]["status"] == "ended", ended.text
    page.goto(server.url + "/me/family")
    expect(card.locator(".tag")).to_have_text(["已解除"])  # no 家庭共济 beside it
    expect(card).not_to_contain_text("今年已用")
    expect(card).to_contain_text(
        re.compile(r"解除时间：\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}（北京时间）")
    )
    page.goto(server.url + f"/family/links/{link_id}")
    summary = page.locator("dl.summary")
    expect(summary).not_to_contain_text("家庭共济")
    expect(summary).not_to_contain_text("今年已用")
    expect(summary).to_contain_text("已解除")
    expect(summary.locator("div", has_text="解除时间")).to_contain_text("（北京时间）")
    _mode(page, server, "en")
    page.goto(server.url + "/me/family")
    expect(card.locator(".tag")).to_have_count(1)
    expect(card).to_contain_text(re.compile(r"Ended: .*\(Beijing time\)"))
