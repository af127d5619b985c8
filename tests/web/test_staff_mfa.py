"""A staff member with a second factor logs in on the web page: the folded
"工作人员：动态验证码" box opens with a clear message when the code is missing, and
the current code from the authenticator lets them in (phone width; 长辈模式 too)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page, expect

from qinqing.audit.actor import Actor
from qinqing.auth import mfa
from qinqing.auth import service as auth
from qinqing.auth.staff import enrol_mfa
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from support.web import STAFF_PASSWORD, Server, log_in

OPERATOR = Actor("operator", "web-test", "admin")


def _staff_with_factor(data_dir: Path, username: str) -> str:
    """A clerk of 150600 with TOTP enrolled, written into the running server's
    database as `staff add` and `staff mfa` would; the secret as an app reads it."""
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
            auth.add_staff(
                session,
                rt,
                username=username,
                role="clerk",
                region_code="150600",
                password=STAFF_PASSWORD,
                actor=OPERATOR,
            )
            uri = enrol_mfa(session, rt, username, actor=OPERATOR).uri
    finally:
        rt.db.dispose()
    return parse_qs(urlparse(uri).query)["secret"][0]


def _journey(page: Page, server: Server, username: str, secret: str) -> None:
    log_in(page, server, username, STAFF_PASSWORD)
    box = page.locator("details.staff-factor")
    expect(box).to_have_attribute("open", "")
    expect(page.locator("#totp-error")).to_contain_text("6 位动态验证码")
    page.get_by_label("密码", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("动态验证码", exact=True).fill(mfa.code_at(secret, datetime.now(UTC)))
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/counter")


def test_a_clerk_logs_in_with_the_authenticator_code(page: Page, server: Server) -> None:
    secret = _staff_with_factor(server.data_dir, "mfa.clerk")
    page.goto(server.url + "/login")
    # Folded away for persons: the box is closed until a staff member needs it.
    expect(page.locator("details.staff-factor")).not_to_have_attribute("open", "")
    _journey(page, server, "mfa.clerk", secret)


def test_the_same_in_elder_mode(page: Page, server: Server) -> None:
    secret = _staff_with_factor(server.data_dir, "mfa.elder")
    page.goto(server.url + "/prefs/elder?to=1&next=/login")
    _journey(page, server, "mfa.elder", secret)
    box = page.locator("html")
    expect(box).to_have_class("elder")
