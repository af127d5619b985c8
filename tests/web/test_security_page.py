"""账户与安全 in process, on both databases: the devices logged in (this one marked),
a password change with its refusals next to the right box, and 退出所有设备."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import PASSWORD, login, person_with_account
from support.pages import csrf_of, web_login


def _web_login(client: TestClient) -> None:
    web_login(client, "13800138000", PASSWORD)


def _post(client: TestClient, path: str, **fields: str) -> tuple[int, str, str]:
    form = client.get("/me/security")
    r = client.post(path, data={"csrf_token": csrf_of(form.text), **fields}, follow_redirects=False)
    return r.status_code, r.text, r.headers.get("location", "")


def test_devices_password_and_logging_out_everywhere(rt: Runtime, client: TestClient) -> None:
    _, _, app_session = person_with_account(rt, client, phone="13800138000")
    _web_login(client)
    me = client.get("/me").text
    assert 'href="/me/security"' in me and "账户与安全" in me
    page = client.get("/me/security").text
    assert "登录设备" in page and page.count("当前设备") == 1
    assert "网上办理" in page  # the channel of both sessions
    status, text, _ = _post(
        client, "/me/password", password=PASSWORD, new_password="ab", confirm_password="ab"
    )
    assert status == 422 and 'id="new_password-error"' in text
    status, text, _ = _post(
        client,
        "/me/password",
        password="Wrong-pass-1",
        new_password="Newpass2026x",
        confirm_password="Newpass2026x",
    )
    assert status == 422 and 'id="password-error"' in text
    status, _, where = _post(
        client,
        "/me/password",
        password=PASSWORD,
        new_password="Newpass2026x",
        confirm_password="Newpass2026x",
    )
    assert status == 303 and where == "/me/security?done=password"
    assert "其他设备上的登录已退出" in client.get(where).text
    assert client.get("/api/v1/me", headers=app_session).status_code == 401
    # Someone else logs in with the new password: this browser is told, then logs
    # every device out, itself included.
    other = login(client, "13800138000", "Newpass2026x")
    notices = client.get("/me/notifications").text
    assert "另一台设备上登录" in notices
    status, _, where = _post(client, "/me/sessions/end")
    assert status == 303 and where.startswith("/login")
    assert client.get("/api/v1/me", headers=other).status_code == 401
    assert client.get("/me", follow_redirects=False).status_code in (302, 303)
