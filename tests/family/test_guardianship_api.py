"""A minor is bound only by a proven guardian (docs/family.md "Guardianship"): the
registered guardian at once; anyone else uploads a proof a reviewer of the
member's region decides, or shows it to a clerk there. Until then the link
allows nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.models import AuditEntry
from qinqing.family.models import LinkProof
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.counter import audit_entries, clerk, pdf_text, staff
from support.family import API, Party, bind, consent, new_person
from support.guardians import register_guardians
from support.unbind import load_link

# The smallest files each format starts with (what the server checks is the content).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
CHILD_BORN = date(2016, 6, 1)


def _world(rt: Runtime, client: TestClient) -> tuple[Party, Party, Party]:
    """A parent (registered guardian) and a stranger of another city; a child of 鄂尔多斯."""
    parent = new_person(rt, name="张伟", client=client)
    stranger = new_person(rt, name="林芳", region="440100", sex="F", client=client)
    child = new_person(rt, name="张小雨", born=CHILD_BORN, sex="F", account=False)
    register_guardians(rt, child.id_number, parent.id_number)
    return parent, stranger, child


def _pending(client: TestClient, stranger: Party, child: Party) -> dict[str, Any]:
    r = bind(client, stranger.headers, child.id_number, child.name, "child")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending_proof"
    return dict(r.json())


def upload(
    client: TestClient,
    headers: dict[str, str],
    link_id: str,
    data: bytes = PNG,
    *,
    document_type: str = "birth_certificate",
    filename: str = "cert.png",
) -> Any:
    return client.post(
        f"{API}/family/links/{link_id}/proof",
        headers=headers,
        data={"document_type": document_type},
        files={"file": (filename, io.BytesIO(data), "application/octet-stream")},
    )


def notice_kinds(rt: Runtime, who: Party) -> list[str]:
    with rt.db.unit_of_work() as s:
        return list(
            s.execute(
                select(Notification.kind)
                .where(Notification.person_id == who.id)
                .order_by(Notification.created_at, Notification.id)
            ).scalars()
        )


def proofs_stored(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(LinkProof)).scalar_one())


# --- a pending_proof link allows nothing ------------------------------------------------


def test_a_link_waiting_for_proof_allows_nothing(rt: Runtime, client: TestClient) -> None:
    """The review's abuse, replayed: the stranger may not show the child's e-voucher,
    see the payments on the link, or be paid for by the child's hospital."""
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    voucher = client.post(f"{API}/vouchers", headers=stranger.headers, json={"link_id": link["id"]})
    assert voucher.status_code == 404, voucher.text
    costs = client.get(f"{API}/family/links/{link['id']}/payments", headers=stranger.headers)
    assert costs.status_code == 404, costs.text
    # The holder sees the link itself, with what they typed only.
    own = client.get(f"{API}/family/links/{link['id']}", headers=stranger.headers).json()
    assert own["status"] == "pending_proof"
    assert own["member"]["name"] == "张小雨" and "*" in own["member"]["id_number"]
    assert own["member"]["status"] is None and own["member"]["region_code"] is None
    assert own["region_code"] == "440100"  # the holder's


def test_the_guardians_are_told_of_a_binding_by_someone_else(
    rt: Runtime, client: TestClient
) -> None:
    parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    assert notice_kinds(rt, parent) == ["link.guardian_notice"]
    page = client.get(f"{API}/me/notifications", headers=parent.headers).json()
    [notice] = page["items"]
    assert notice["payload"]["link_id"] == link["id"]
    assert notice["payload"]["holder_name_masked"] == "林*"
    assert notice["payload"]["member_name_masked"] == "张**"
    assert "林芳" not in str(notice)
    # The guardian binding the child themselves tells nobody else.
    other_child = new_person(rt, name="张小雷", born=CHILD_BORN, account=False)
    register_guardians(rt, other_child.id_number, parent.id_number)
    assert bind(client, parent.headers, other_child.id_number, "张小雷", "child").status_code == 201
    assert sorted(notice_kinds(rt, parent)) == ["link.bound", "link.guardian_notice"]


# --- upload and review -------------------------------------------------------------------


def test_upload_then_approval_makes_the_link_active(rt: Runtime, client: TestClient) -> None:
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    r = upload(client, stranger.headers, link["id"])
    assert r.status_code == 201, r.text
    proof = r.json()
    assert proof == {"id": proof["id"], "link_id": link["id"], "status": "pending"}
    # The child is of 鄂尔多斯 (the stranger of 广州): reviewers of 鄂尔多斯 decide.
    ordos = staff(rt, client, "eeds-reviewer", "reviewer", "150600")
    canton = staff(rt, client, "gz-reviewer", "reviewer", "440100")
    queue = client.get(f"{API}/review/link-proofs", headers=ordos).json()
    assert [item["id"] for item in queue["items"]] == [proof["id"]]
    item = queue["items"][0]
    assert item["document_type"] == "birth_certificate" and item["content_type"] == "image/png"
    assert client.get(f"{API}/review/link-proofs", headers=canton).json()["items"] == []
    shown = client.get(item["document_url"], headers=ordos)
    assert shown.status_code == 200 and shown.content == PNG
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["cache-control"] == "no-store"
    assert client.get(item["document_url"], headers=canton).status_code == 404
    assert client.get(item["document_url"], headers=stranger.headers).status_code == 403
    decide = f"{API}/review/link-proofs/{proof['id']}/decision"
    assert client.post(decide, headers=canton, json={"decision": "approve"}).status_code == 404
    r = client.post(
        decide, headers=ordos, json={"decision": "approve", "comment": "出生医学证明相符"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["link"]["status"] == "active"
    assert load_link(rt, link["id"]).status == "active"
    assert "link.proof_approved" in notice_kinds(rt, stranger)
    again = client.post(decide, headers=ordos, json={"decision": "approve"})
    assert (again.status_code, again.json()["code"]) == (409, "PROOF_NOT_PENDING")
    # Now the link is in force: the voucher may be shown.
    voucher = client.post(f"{API}/vouchers", headers=stranger.headers, json={"link_id": link["id"]})
    assert voucher.status_code == 201, voucher.text


def test_a_rejected_proof_ends_the_link(rt: Runtime, client: TestClient) -> None:
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    proof = upload(client, stranger.headers, link["id"], PDF, filename="x.pdf").json()
    reviewer = staff(rt, client, "eeds-reviewer", "reviewer", "150600")
    decide = f"{API}/review/link-proofs/{proof['id']}/decision"
    r = client.post(decide, headers=reviewer, json={"decision": "reject"})
    assert (r.status_code, r.json()["code"]) == (422, "COMMENT_REQUIRED")
    r = client.post(decide, headers=reviewer, json={"decision": "reject", "comment": "非监护人"})
    assert r.status_code == 200, r.text
    ended = load_link(rt, link["id"])
    assert ended.status == "ended" and ended.end_reason == "guardianship proof rejected"
    assert "link.proof_rejected" in notice_kinds(rt, stranger)


def test_only_an_image_or_pdf_of_at_most_5_mb_is_taken(rt: Runtime, client: TestClient) -> None:
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    for data, name in (
        (b"GIF89a" + b"\x00" * 32, "cert.png"),  # named .png, a GIF by its content
        (b"<html><script>alert(1)</script>", "cert.pdf"),
        (b"", "empty.png"),
        (PNG + b"\x00" * (5 * 1024 * 1024), "big.png"),
    ):
        r = upload(client, stranger.headers, link["id"], data, filename=name)
        assert (r.status_code, r.json()["code"]) == (422, "PROOF_FILE_INVALID"), r.text
    r = upload(client, stranger.headers, link["id"], document_type="passport")
    assert r.status_code == 422
    assert proofs_stored(rt) == 0
    assert upload(client, stranger.headers, link["id"]).status_code == 201
    twice = upload(client, stranger.headers, link["id"])
    assert (twice.status_code, twice.json()["code"]) == (409, "PROOF_ALREADY_PENDING")
    assert proofs_stored(rt) == 1


def test_only_the_holder_of_a_waiting_link_uploads(rt: Runtime, client: TestClient) -> None:
    parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    assert upload(client, parent.headers, link["id"]).status_code == 404
    # A link already in force needs no proof.
    spouse = new_person(rt, name="陈静", sex="F", born=date(1986, 1, 1), client=client)
    made = bind(client, parent.headers, spouse.id_number, spouse.name, "spouse").json()
    assert consent(client, spouse.headers, made["id"]).status_code == 200
    r = upload(client, parent.headers, made["id"])
    assert (r.status_code, r.json()["code"]) == (409, "LINK_NOT_PENDING_PROOF")
    r = upload(client, spouse.headers, made["id"])
    assert (r.status_code, r.json()["code"]) == (403, "NOT_THE_HOLDER")


def test_the_file_is_stored_encrypted_and_never_audited(rt: Runtime, client: TestClient) -> None:
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    marker = b"QINQING-SECRET-DOCUMENT-CONTENT"
    upload(client, stranger.headers, link["id"], PNG + marker)
    with rt.db.unit_of_work() as s:
        [cipher] = s.execute(select(LinkProof.content_cipher)).scalars()
        details = " ".join(str(d) for d in s.execute(select(AuditEntry.details)).scalars())
    assert cipher is not None and marker not in cipher
    assert "QINQING-SECRET" not in details
    [entry] = audit_entries(rt, "family.proof.upload")
    assert entry.details["content_type"] == "image/png"


# --- at the counter ----------------------------------------------------------------------


def test_a_clerk_of_the_members_region_sees_the_proof(rt: Runtime, client: TestClient) -> None:
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    body = {
        "document": {"type": "household_register", "number": "HK15060212345678"},
        "form_number": "EEDS-2026-0042",
    }
    url = f"{API}/counter/links/{link['id']}/proof"
    # The holder's region is 广州, the child's 鄂尔多斯: a 广州 clerk does not serve it.
    canton = clerk(rt, client, "gz-clerk", "440100")
    assert client.post(url, headers=canton, json=body).status_code == 404
    ordos = clerk(rt, client, "eeds-clerk")
    r = client.post(url, headers=ordos, json={**body, "form_number": "150602198503120034"})
    assert (r.status_code, r.json()["code"]) == (422, "FORM_NUMBER_INVALID")
    r = client.post(url, headers=ordos, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["link"]["status"] == "active"
    assert load_link(rt, link["id"]).status == "active"
    again = client.post(url, headers=ordos, json=body)
    assert (again.status_code, again.json()["code"]) == (409, "LINK_NOT_PENDING_PROOF")
    receipt = client.get(r.json()["receipt_url"], headers=ordos)
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    text = pdf_text(receipt.content)
    assert "户口本" in text and "EEDS-2026-0042" in text and "5678" in text
    assert "HK15060212345678" not in text  # the number is masked on a slip
    assert "监护关系证明已查验" in text
    with rt.db.unit_of_work() as s:
        [number] = s.execute(select(LinkProof.document_number_cipher)).scalars()
        assert number is not None and b"HK15060212345678" not in number
    [entry] = audit_entries(rt, "family.proof.counter")
    assert entry.details["form_number"] == "EEDS-2026-0042"
    assert "HK15060212345678" not in str(entry.details)


def test_approval_decides_the_binding_rules_again(rt: Runtime, client: TestClient) -> None:
    """Between the binding and the proof the holder fell into arrears: the approval
    is refused like a consent would be, and the link keeps waiting."""
    _parent, stranger, child = _world(rt, client)
    link = _pending(client, stranger, child)
    proof = upload(client, stranger.headers, link["id"]).json()
    with rt.db.unit_of_work() as s:
        from qinqing.persons.models import Person

        s.get_one(Person, stranger.id).status = "arrears"
    reviewer = staff(rt, client, "eeds-reviewer", "reviewer", "150600")
    r = client.post(
        f"{API}/review/link-proofs/{proof['id']}/decision",
        headers=reviewer,
        json={"decision": "approve"},
    )
    assert (r.status_code, r.json()["code"]) == (409, "HOLDER_NOT_ACTIVE")
    assert load_link(rt, link["id"]).status == "pending_proof"
