"""Browser-test fixtures: one live server per test module, one Chromium per session.

These tests drive pages over HTTP against a real ``qinqing serve`` on SQLite
only; the services behind the pages are tested on SQLite and PostgreSQL in the
other test packages.

Each module gets a server of its own, on a fresh copy of the demo data: the
journeys change that data (they bind, unbind, register), and each module's tests
start from the demo as it is. The data is seeded once per session and
configuration (the operator policy folder a module's ``server_env`` names) and
copied for each module. A server of the default configuration (most modules') is
started one module ahead: when a module takes one, the next is started on its own
fresh copy, so that it comes up while this module's tests run instead of in front
of the next module's (about 2 s each); the last one is stopped unused. Under xdist (``make test``: ``--dist load``) a module
whose tests land on both workers gets a server on each. (``--dist loadgroup``
with ``xdist_group`` marks cannot keep them together: pytest-xdist 3.8 groups by
rewriting ``item._nodeid``, which pytest 9 no longer reads.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from support.web import (
    CHROMIUM,
    PHONE,
    Server,
    StartingServer,
    cjk_font_installed,
    close_page,
    launch,
    new_page,
    seed,
    seeded_copy,
)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra QINQING_* variables for the module's server (a module may override it)."""
    return {}


@pytest.fixture(scope="session")
def seeded_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, str]], Path]:
    """The seeded data directory for a server configuration, made on first use."""
    made: dict[str | None, Path] = {}

    def template(env: dict[str, str]) -> Path:
        # The policy folder is the only variable the seeding reads.
        key = env.get("QINQING_POLICY_DIR")
        if key not in made:
            folder = tmp_path_factory.mktemp("seeded")
            seed(folder, env)
            made[key] = folder
        return made[key]

    return template


@pytest.fixture(scope="session")
def fresh_server(
    tmp_path_factory: pytest.TempPathFactory,
    seeded_data: Callable[[dict[str, str]], Path],
) -> Iterator[Callable[[dict[str, str]], StartingServer]]:
    """A server being started on a fresh copy of the seeded data for a configuration;
    for the default configuration, the one started ahead (and the next is started)."""
    ahead: StartingServer | None = None

    def start(env: dict[str, str]) -> StartingServer:
        data_dir = seeded_copy(seeded_data(env), tmp_path_factory.mktemp("web"))
        return StartingServer(data_dir, env)

    def take(env: dict[str, str]) -> StartingServer:
        nonlocal ahead
        if env:
            return start(env)
        taken = ahead or start(env)
        ahead = start(env)
        return taken

    try:
        yield take
    finally:
        if ahead is not None:
            ahead.stop()


@pytest.fixture(scope="module")
def server(
    server_env: dict[str, str], fresh_server: Callable[[dict[str, str]], StartingServer]
) -> Iterator[Server]:
    starting = fresh_server(server_env)
    try:
        yield starting.wait()
    finally:
        starting.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)"
    elif not cjk_font_installed():
        # Without a CJK font every Chinese character is drawn as a fallback box of another
        # width, and the phone-layout checks would measure pages no phone shows.
        reason = "browser tests need a CJK font (apt-get install -y fonts-noto-cjk)"
    if reason is not None:
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
    close_page(tab)
