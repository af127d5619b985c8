"""办事指南: the procedures, every unbind condition with what to do, and the regional
differences rendered from the policies the server loaded (here with an operator
override, so the page cannot have been typed by hand)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from qinqing.unbind.rules import CODES
from support.web import Server


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder: Path = tmp_path_factory.mktemp("policies")
    (folder / "150600.toml").write_text(
        'unbind_cooling_off_days = 15\nunbind_review = "manual"\n', "utf-8"
    )
    yield {"QINQING_POLICY_DIR": str(folder)}


def test_help_shows_procedures_conditions_and_the_loaded_policies(
    server: Server, page: Page
) -> None:
    page.goto(server.url + "/help")  # no login needed
    expect(page.get_by_role("heading", level=1)).to_have_text("办事指南")
    main = page.locator("main")
    expect(main.get_by_role("heading", name="网上办理")).to_be_visible()
    expect(main.get_by_role("heading", name="线下办理")).to_be_visible()
    expect(main).to_contain_text("12333")
    for code in CODES:
        expect(page.locator(f".condition[data-code={code}] dd")).to_contain_text("怎么办")

    ordos = page.locator("tr[data-region='150600']")
    expect(ordos).to_contain_text("鄂尔多斯市")
    expect(ordos).to_contain_text("绑定满 15 天后")  # the operator's file, not the shipped one
    expect(ordos).to_contain_text("需要审核")
    guangzhou = page.locator("tr[data-region='440100']")
    expect(guangzhou).to_contain_text("需要审核")
    expect(guangzhou).to_contain_text("兄弟姐妹")  # close relatives admitted there
    beijing = page.locator("tr[data-region='110000']")
    expect(beijing).to_contain_text("无需审核，即时办结")
    expect(beijing).to_contain_text("随时")
