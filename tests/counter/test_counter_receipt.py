"""GET /counter/unbind-requests/{id}/receipt.pdf on SQLite and PostgreSQL: a real PDF
whose text (read back with pypdf) shows every field the person takes home."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from qinqing.identity.masking import mask_id_number
from qinqing.runtime import Runtime
from support.counter import (
    API,
    clerk,
    counter_family,
    counter_unbind,
    pdf_text,
    receipt_url,
    staff,
    unbind_body,
)
from support.unbind import family, pin_verification

GZ = "440100"


def test_the_receipt_of_a_completed_unbind(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    body = unbind_body(fam.link_id, fam.holder_number, form_number="EEDS-2026-0815")
    request_id = counter_unbind(client, desk, body).json()["request"]["id"]

    r = client.get(receipt_url(request_id), headers=desk)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "no-store"
    # Shown in the caller's viewer, named for the request it is the receipt of.
    assert r.headers["content-disposition"] == f'inline; filename="receipt-{request_id}.pdf"'
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content)
    for field in (
        "医保亲情账户解除绑定回执",
        "鄂尔多斯市医疗保障经办机构",  # the agency, by region name
        "eeds-clerk",  # the clerk who handled it
        "EEDS-2026-0815",  # the paper form
        "王**",
        mask_id_number(fam.holder_number),
        "李**",
        mask_id_number(fam.member_number),
        "配偶",
        "2026年11月23日 17:00（北京时间）",  # 09:00 UTC on the test clock
        "解除成功",
        request_id,
    ):
        assert field in text, field
    # Handed over on paper: no full name or ID number on it.
    for secret in (fam.holder_number, fam.member_number, "王建国", "李秀英"):
        assert secret not in text
    assert "审核中" not in text.replace("结果为“审核中”", "")


def test_a_review_regions_receipt_shows_under_review_then_the_decision(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt, region=GZ)
    desk = clerk(rt, client, "gz-clerk", GZ)
    reviewer = staff(rt, client, "gz-review", "reviewer", GZ)
    request_id = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number)).json()[
        "request"
    ]["id"]

    text = pdf_text(client.get(receipt_url(request_id), headers=desk).content)
    assert "广州市医疗保障经办机构" in text
    assert "办理结果：审核中" in text
    assert "解除成功" not in text

    r = client.post(
        f"{API}/review/unbind-requests/{request_id}/decision",
        headers=reviewer,
        json={"decision": "reject", "comment": "申请表缺少签名"},
    )
    assert r.status_code == 200, r.text
    text = pdf_text(client.get(receipt_url(request_id), headers=desk).content)
    assert "审核未通过，关系继续有效" in text
    assert "申请表缺少签名" in text
    assert "审核时间" in text


def test_only_counter_requests_of_the_clerks_region_have_a_receipt(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    far = clerk(rt, client, "gz-clerk", GZ)
    request_id = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number)).json()[
        "request"
    ]["id"]
    # An unbind the member made in the app has no counter receipt.
    _, h, _, _, app_link = family(rt, client)
    r = client.post(
        f"{API}/family/links/{app_link.id}/unbind",
        headers=h,
        json={"verification": pin_verification()},
    )
    app_request = r.json()["request"]["id"]

    answers = [
        client.get(receipt_url(request_id), headers=far),
        client.get(receipt_url(app_request), headers=desk),
        client.get(receipt_url(str(uuid.uuid4())), headers=desk),
        client.get(receipt_url("not-an-id"), headers=desk),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert len({a.text for a in answers}) == 1
