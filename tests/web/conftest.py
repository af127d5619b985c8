"""Browser-test fixtures: one live server per test module, one Chromium per session.

These tests drive pages over HTTP against a real ``qinqing serve`` on SQLite
only; the services behind the pages are tested on SQLite and PostgreSQL in the
other test packages.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from web_support import CHROMIUM, PHONE, Server, launch, live_server, new_page


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra QINQING_* variables for the module's server (a module may override it)."""
    return {}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]
) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("web"), server_env) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    tab = new_page(browser, PHONE)
    yield tab
    tab.context.close()
