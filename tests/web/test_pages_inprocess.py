"""The pages in process on both databases: the session cookie over TLS, CSRF, friendly
errors for web paths while the API keeps problem+json."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from qinqing.app import create_app
from qinqing.runtime import Runtime
from support import PASSWORD, person_with_account


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def test_login_over_tls_sets_a_secure_http_only_cookie(rt: Runtime, client: TestClient) -> None:
    person_with_account(rt, client, phone="13800138000")
    with TestClient(create_app(rt), base_url="https://testserver") as tls:
        form = tls.get("/login")
        answer = tls.post(
            "/login",
            data={"csrf_token": _csrf(form.text), "login": "13800138000", "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/me"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("qq_session=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        me = tls.get("/me")
        assert me.status_code == 200 and "张三" in me.text


def test_refusals_are_pages_on_the_web_and_problems_on_the_api(
    rt: Runtime, client: TestClient
) -> None:
    person_with_account(rt, client, phone="13800138000")
    form = client.get("/login")
    refused = client.post("/login", data={"login": "13800138000", "password": PASSWORD})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    wrong = client.post(
        "/login", data={"csrf_token": _csrf(form.text), "login": "13800138000", "password": "nope"}
    )
    assert wrong.status_code == 422 and "账号或密码错误" in wrong.text
    client.post(
        "/login",
        data={"csrf_token": _csrf(form.text), "login": "13800138000", "password": PASSWORD},
    )
    missing = client.get("/family/links/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "找不到这个页面" in missing.text
    assert "退出登录" in missing.text  # still logged in: the header keeps its navigation
    api = client.get("/api/v1/family/links/00000000-0000-0000-0000-000000000000")
    assert api.status_code == 401 and api.json()["code"] == "UNAUTHENTICATED"
