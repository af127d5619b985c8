"""The walk-through of docs/counter.md, as the same requests against the demo data."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from qinqing.entrypoints import demo
from qinqing.runtime import Runtime
from support.accounts import login
from support.counter import COUNTER, pdf_text, receipt_url
from support.unbind import codes

ZHANG_WEI = "150602198503120034"
WANG_XIUYING = "152701195409050022"


def test_the_documented_counter_walk_through_works_on_the_demo(
    rt: Runtime, client: TestClient
) -> None:
    assert demo.load(rt)
    assert ("staff clerk (150600)", "demo-clerk", demo.STAFF_PASSWORD, "") in demo.logins()
    desk = login(client, "demo-clerk", demo.STAFF_PASSWORD)

    found = client.post(f"{COUNTER}/lookup", headers=desk, json={"id_number": ZHANG_WEI})
    assert found.status_code == 200, found.text
    assert found.json()["person"]["name"] == "张伟"
    [link] = [x["id"] for x in found.json()["as_holder"] if x["relation"] == "mother"]

    def unbind(party: str, number: str) -> Any:
        return client.post(
            f"{COUNTER}/unbind",
            headers={**desk, "Idempotency-Key": f"demo-counter-{party}"},
            json={
                "link_id": link,
                "on_behalf_of": party,
                "id_document": {"type": "resident_id", "number": number},
                "form_number": "EEDS-2026-0001",
            },
        )

    refused = unbind("member", WANG_XIUYING)
    assert refused.status_code == 409
    assert codes(refused.json()) == ["ACCOUNT_IN_ARREARS"]

    done = unbind("holder", ZHANG_WEI)
    assert done.status_code == 200, done.text
    request_id = done.json()["request"]["id"]
    pdf = client.get(receipt_url(request_id), headers=desk)
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "鄂尔多斯市医疗保障经办机构" in text and "解除成功" in text and "demo-clerk" in text
