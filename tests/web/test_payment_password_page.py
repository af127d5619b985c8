"""支付密码 on the web: set the first time with the login password, changed with the
current payment password (a second field, clearly labelled), easy digits refused with
the reason next to the box; on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import PASSWORD, person_with_account
from support.pages import csrf_of, web_login


def _login(client: TestClient) -> None:
    web_login(client, "13800138000", PASSWORD)


def _submit(client: TestClient, **fields: str) -> tuple[int, str]:
    form = client.get("/me/payment-password")
    answer = client.post(
        "/me/payment-password",
        data={"csrf_token": csrf_of(form.text), **fields},
        follow_redirects=False,
    )
    return answer.status_code, answer.text


def test_set_then_change_with_the_current_payment_password(rt: Runtime, client: TestClient) -> None:
    person_with_account(rt, client, phone="13800138000")
    _login(client)
    first = client.get("/me/payment-password").text
    assert "登录密码" in first and "当前支付密码" not in first
    status, page = _submit(
        client,
        password=PASSWORD,
        new_payment_password="111222",
        confirm_payment_password="111222",
    )
    assert status == 422 and "该支付密码过于简单" in page
    status, _ = _submit(
        client,
        password=PASSWORD,
        new_payment_password="135790",
        confirm_payment_password="135790",
    )
    assert status == 303
    change = client.get("/me/payment-password").text
    assert "当前支付密码" in change and 'name="password"' not in change
    status, page = _submit(
        client,
        payment_password="000000",
        new_payment_password="402957",
        confirm_payment_password="402957",
    )
    assert status == 422 and "身份核验未通过" in page and "还可尝试 4 次" in page
    status, _ = _submit(
        client,
        payment_password="135790",
        new_payment_password="402957",
        confirm_payment_password="402957",
    )
    assert status == 303
