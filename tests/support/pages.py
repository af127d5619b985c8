"""Helpers for the pages in process (the app through ``AppClient``, no browser): a
form's CSRF token, and logging in on the 登录 page as a person or a staff member does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from qinqing.entrypoints.app import create_app
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_staff
from support.client import AppClient

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = _CSRF.search(html)
    assert found, "no form with a CSRF token on this page"
    return found.group(1)


def web_login(client: TestClient, login: str, password: str) -> None:
    """Log in through the 登录 form; the answer must be the redirect onwards."""
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "login": login, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@contextmanager
def staff_browser(rt: Runtime, username: str, role: str, region: str) -> Iterator[TestClient]:
    """A second browser, logged in as a new staff member."""
    add_staff(rt, username, role, region)
    with AppClient(create_app(rt), raise_server_exceptions=False) as other:
        web_login(other, username, STAFF_PASSWORD)
        yield other
