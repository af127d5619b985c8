"""The guardianship-proof pages in process, on SQLite and PostgreSQL: a refused
upload is an error summary on the member's page and stores nothing; the document
is served only to staff of the child's region, with a GET that changes nothing;
the reviewer's and the clerk's forms call the services and show their refusals."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.models import AuditEntry
from qinqing.family.models import FamilyLink, LinkProof
from qinqing.family.proof_rules import MAX_FILE_BYTES
from qinqing.runtime import Runtime
from support.family import PERSON_PASSWORD, Party, bind, new_person
from support.pages import csrf_of, staff_browser, web_login

API = "/api/v1"


def tiny_png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Pending:
    holder: Party
    child: Party
    link_id: str


def pending_link(rt: Runtime, client: TestClient) -> Pending:
    """A holder (no registered guardian) binds a young child: ``pending_proof``."""
    holder = new_person(rt, name="王建国", client=client)
    child = new_person(rt, name="王小宝", born=date(2018, 6, 1), sex="F", account=False)
    r = bind(client, holder.headers, child.id_number, child.name, "child")
    assert r.status_code == 201 and r.json()["status"] == "pending_proof", r.text
    return Pending(holder, child, r.json()["id"])


def proofs_stored(rt: Runtime) -> int:
    with rt.db.read_only() as s:
        return int(s.execute(select(func.count()).select_from(LinkProof)).scalar_one())


def audit_count(rt: Runtime) -> int:
    with rt.db.read_only() as s:
        return int(s.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def link_status(rt: Runtime, link_id: str) -> str:
    with rt.db.read_only() as s:
        status = s.execute(
            select(FamilyLink.status).where(FamilyLink.id == uuid.UUID(link_id))
        ).scalar_one()
        return str(status)


def test_a_refused_upload_is_an_error_summary_and_stores_nothing(
    rt: Runtime, client: TestClient
) -> None:
    made = pending_link(rt, client)
    web_login(client, made.holder.phone, PERSON_PASSWORD)
    page = client.get(f"/family/links/{made.link_id}")
    assert page.status_code == 200 and "待提交监护证明" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "出示电子凭证" not in page.text and "今年的共济支付" not in page.text
    csrf = csrf_of(page.text)

    # Text called proof.png: refused by its content, shown at the file field.
    text = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"csrf_token": csrf, "document_type": "birth_certificate"},
        files={"file": ("proof.png", b"just some text, not a picture", "image/png")},
    )
    assert text.status_code == 422
    assert 'class="error-summary"' in text.text and 'href="#file"' in text.text
    assert "证明材料文件不符合要求" in text.text
    # Too large: one byte over 5 MB (the multipart form around it is still let in).
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_FILE_BYTES - 7)
    too_large = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"csrf_token": csrf, "document_type": "birth_certificate"},
        files={"file": ("big.png", big, "image/png")},
    )
    assert too_large.status_code == 422 and "证明材料文件不符合要求" in too_large.text
    # No file chosen, no document type: said before the service is asked.
    nothing = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"csrf_token": csrf},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert nothing.status_code == 422
    assert (
        "请选择证明材料的类型" in nothing.text and "请选择要上传的照片或 PDF 文件" in nothing.text
    )
    # Without the form's CSRF token nothing is read.
    forged = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"document_type": "birth_certificate"},
        files={"file": ("proof.png", tiny_png(), "image/png")},
    )
    assert forged.status_code == 403 and "页面已过期" in forged.text
    assert proofs_stored(rt) == 0
    assert link_status(rt, made.link_id) == "pending_proof"

    done = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"csrf_token": csrf, "document_type": "birth_certificate"},
        files={"file": ("proof.png", tiny_png(), "image/png")},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/family/links/{made.link_id}?done=proof_uploaded"
    assert proofs_stored(rt) == 1
    page = client.get(f"/family/links/{made.link_id}")
    assert "监护证明审核中" in page.text and 'type="file"' not in page.text
    again = client.post(
        f"/family/links/{made.link_id}/proof",
        data={"csrf_token": csrf, "document_type": "household_register"},
        files={"file": ("proof.png", tiny_png(), "image/png")},
    )
    assert again.status_code == 422 and "正在审核中" in again.text
    assert proofs_stored(rt) == 1


def test_the_document_is_only_for_staff_of_the_childs_region(
    rt: Runtime, client: TestClient
) -> None:
    made = pending_link(rt, client)
    r = client.post(
        f"{API}/family/links/{made.link_id}/proof",
        headers=made.holder.headers,
        data={"document_type": "birth_certificate"},
        files={"file": ("proof.png", tiny_png(), "image/png")},
    )
    assert r.status_code == 201, r.text
    proof_id = r.json()["id"]
    document = f"/review/proofs/{proof_id}/document"

    web_login(client, made.holder.phone, PERSON_PASSWORD)
    assert client.get(document).status_code == 403  # the holder never gets the file back
    with staff_browser(rt, "reviewer-gz", "reviewer", "440100") as far:
        assert far.get(document).status_code == 404
        assert far.get(f"/review/proofs/{proof_id}").status_code == 404
        assert "王小宝" not in far.get("/review").text

    with staff_browser(rt, "reviewer-eeds", "reviewer", "150600") as reviewer:
        queue = reviewer.get("/review")
        assert queue.status_code == 200 and f"/review/proofs/{proof_id}" in queue.text
        detail = reviewer.get(f"/review/proofs/{proof_id}")
        assert detail.status_code == 200 and f'<img src="{document}"' in detail.text
        assert made.child.id_number not in detail.text  # masked on the page
        before = audit_count(rt)
        shown = reviewer.get(document)
        assert shown.status_code == 200 and shown.content == tiny_png()
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["cache-control"] == "no-store"
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert shown.headers["content-disposition"] == "inline"
        assert audit_count(rt) == before  # a GET that changes nothing

        csrf = csrf_of(detail.text)
        refused = reviewer.post(
            f"/review/proofs/{proof_id}",
            data={"csrf_token": csrf, "decision": "reject", "comment": ""},
        )
        assert refused.status_code == 422 and "驳回时请填写审核意见" in refused.text
        assert link_status(rt, made.link_id) == "pending_proof"
        approved = reviewer.post(
            f"/review/proofs/{proof_id}",
            data={"csrf_token": csrf, "decision": "approve", "comment": ""},
            follow_redirects=False,
        )
        assert approved.status_code == 303, approved.text
        assert link_status(rt, made.link_id) == "active"

    page = client.get(f"/family/links/{made.link_id}")
    assert "已生效" in page.text and "出示电子凭证" in page.text


def test_the_counter_check_is_for_clerks_of_the_childs_region(
    rt: Runtime, client: TestClient
) -> None:
    made = pending_link(rt, client)
    form = f"/counter/links/{made.link_id}/proof"
    with staff_browser(rt, "clerk-gz", "clerk", "440100") as far:
        assert far.get(form).status_code == 404
    with staff_browser(rt, "clerk-eeds", "clerk", "150600") as clerk:
        page = clerk.get(form)
        assert page.status_code == 200 and "查验监护证明" in page.text
        csrf = csrf_of(page.text)
        refused = clerk.post(
            form,
            data={
                "csrf_token": csrf,
                "document_type": "birth_certificate",
                "document_number": "M150602-0001",
                "form_number": made.child.id_number,  # an ID number is no form number
            },
        )
        assert refused.status_code == 422 and "申请表编号不正确" in refused.text
        assert link_status(rt, made.link_id) == "pending_proof" and proofs_stored(rt) == 0
        done = clerk.post(
            form,
            data={
                "csrf_token": csrf,
                "document_type": "birth_certificate",
                "document_number": "M150602-0001",
                "form_number": "EEDS-0001",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        outcome = clerk.get(done.headers["location"])
        assert outcome.status_code == 200 and "监护证明已查验" in outcome.text
        assert "M150602-0001" not in outcome.text and "0001" in outcome.text
        receipt = re.search(r'href="(/counter/link-proofs/[^"]+/receipt\.pdf)"', outcome.text)
        assert receipt
        pdf = clerk.get(receipt.group(1))
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-disposition"].startswith("attachment")
    assert link_status(rt, made.link_id) == "active"


def test_a_counter_binding_that_waits_for_proof_says_so(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, name="王建国", account=False, payment_password=None)
    child = new_person(rt, name="王小宝", born=date(2018, 6, 1), sex="F", account=False)
    with staff_browser(rt, "clerk-eeds", "clerk", "150600") as clerk:
        form = clerk.get("/counter/bind")
        done = clerk.post(
            "/counter/bind",
            data={
                "csrf_token": csrf_of(form.text),
                "holder_name": holder.name,
                "holder_document_type": "resident_id",
                "holder_document_number": holder.id_number,
                "member_name": child.name,
                "member_document_type": "resident_id",
                "member_document_number": child.id_number,
                "relation": "child",
                "mutual_aid": "no",
                "form_number": "EEDS-BIND-0001",
            },
        )
        assert done.status_code == 200, done.text
        assert "还需要查验监护证明" in done.text and "已生效，双方" not in done.text
        assert "待提交监护证明" in done.text
        check = re.search(r'href="(/counter/links/[^"]+/proof\?via=holder)"', done.text)
        assert check, done.text
        assert clerk.get(check.group(1)).status_code == 200
