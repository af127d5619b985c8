"""查验监护证明 at the counter desk: a clerk of the child's region sees the
guardianship document of a ``pending_proof`` link (出生医学证明, 户口本 or a
court's guardianship document) and records its type and number and the paper
form's number — ``counter.service.accept_proof``, which makes the link active
(the binding rules decided again) — then prints the receipt.

As on the rest of the desk, the service decides: a link whose child is insured
in another region is the 404 an unknown one gets. The document's number is
typed into a POST form only, part of the keyed idempotency hash, kept
encrypted by the service, and shown masked afterwards.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.counter import receipt as receipt_pdf
from qinqing.counter import service as counter
from qinqing.family import proofs
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.identity.masking import mask_document_number
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text, form_key, new_form_key, once
from qinqing.web.pages_family import proof_choices
from qinqing.web.pages_proof import shown_params
from qinqing.web.render import page, redirect, t
from qinqing.web.session import ClerkPage
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

Via = Literal["holder", "member"]
# Which field a refusal belongs to, for the error summary's links.
PROOF_FIELDS = {
    "FORM_NUMBER_INVALID": "form_number",
    "DOCUMENT_NUMBER_INVALID": "document_number",
    "DOCUMENT_TYPE_INVALID": "document_type",
}


def _via(raw: str | None) -> Via:
    """Whose record the clerk came from (and goes back to)."""
    return "holder" if raw == "holder" else "member"


def _form_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    via: Via,
    *,
    key: str,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    link = proofs.find_for_member_region(session, link_id, principal.region_code or "")
    out = link_out(session, rt, link, principal)
    back = out.holder if via == "holder" else out.member
    return page(
        request,
        rt,
        session,
        "counter_proof.html",
        status_code=422 if errors else 200,
        link=out,
        via=via,
        back_id=back.id,
        proof_choices=proof_choices(),
        idempotency_key=key,
        values=values or {"document_type": "", "form_number": ""},
        **(errors.context() if errors else {}),
    )


@router.get("/counter/links/{link_id}/proof")
def proof_form(
    link_id: str,
    request: Request,
    principal: ClerkPage,
    session: SessionDep,
    rt: RuntimeDep,
    via: str = "member",
) -> Response:
    return _form_page(request, session, rt, principal, link_id, _via(via), key=new_form_key())


@router.post("/counter/links/{link_id}/proof")
def proof_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: ClerkPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    via = _via(form.get("via"))
    values = {
        "document_type": form.get("document_type", "").strip()[:32],
        "form_number": form.get("form_number", "").strip()[:64],
    }
    number = form.get("document_number", "").strip()[:64]
    errors = Errors()
    if not values["document_type"]:
        errors.add("document_type", t(request, N_("请选择证明材料的类型")))
    if not number:
        errors.add("document_number", t(request, N_("请输入证明材料上的编号")))
    if not values["form_number"]:
        errors.add("form_number", t(request, N_("请输入纸质申请表的编号")))
    if errors:
        return _form_page(
            request, session, rt, principal, link_id, via, key=key, values=values, errors=errors
        )

    def handler() -> tuple[int, dict[str, str]]:
        proof, _link = counter.accept_proof(
            session,
            rt,
            principal,
            link_id,
            document_type=values["document_type"],
            document_number=number,
            form_number=values["form_number"],
        )
        return 200, {"proof_id": str(proof.id)}

    # The key's stored hash covers the document number (keyed, as the API's does).
    body = {"document_number": number, **values}
    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, body, handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        for code in refused.extra.get("refusals") or [refused.code]:
            params = refused.params if code == refused.code else {}
            text = domain_text(request, code, shown_params(request, params))
            errors.add(PROOF_FIELDS.get(code, ""), text)
        return _form_page(
            request, session, rt, principal, link_id, via, key=key, values=values, errors=errors
        )
    return redirect(request, rt, f"/counter/link-proofs/{answer['proof_id']}?via={via}")


@router.get("/counter/link-proofs/{proof_id}")
def proof_outcome(
    proof_id: str,
    request: Request,
    principal: ClerkPage,
    session: SessionDep,
    rt: RuntimeDep,
    via: str = "member",
) -> Response:
    data = counter.proof_receipt(session, rt, principal, proof_id)
    item = proofs.get_for_staff(session, principal, proof_id)
    link = link_out(session, rt, item.link, principal)
    back = link.holder if _via(via) == "holder" else link.member
    return page(
        request,
        rt,
        session,
        "counter_proof_outcome.html",
        data=data,
        proof=item.proof,
        back_id=back.id,
        document_number=mask_document_number(proofs.document_number_of(rt, item.proof) or ""),
    )


@router.get("/counter/link-proofs/{proof_id}/receipt.pdf")
def proof_receipt(
    proof_id: str, request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The same receipt as the API's, for the clerk's browser session (打印回执)."""
    data = counter.proof_receipt(session, rt, principal, proof_id)
    return receipt_pdf.as_response(data, disposition="attachment")
