"""The holder's guardianship proof (监护证明): a binding of a child under the
consent age by someone who is not a guardian on the household register waits
(``pending_proof``) until the holder uploads the 出生医学证明, the 户口本 or a
court's guardianship document here, and a reviewer of the child's region
approves it (``pages_review``) — or until a clerk of that region sees it at the
counter (``pages_counter_proof``).

The form posts to ``/family/links/{id}/proof``: the one web path the HTTP
input guard lets carry a file (``entrypoints.app.UPLOADS``). The file is
checked by ``family.proofs.upload`` (JPEG, PNG or PDF by its content, at most
5 MB), never by its name or the browser's word for its type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from qinqing.family import proof_rules, proofs
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.web import labels
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.pages_family import link_page
from qinqing.web.render import redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

FILE_FIELD = "file"
# Which field a refused upload belongs to, for the error summary's links.
PROOF_FIELDS = {
    "PROOF_FILE_INVALID": FILE_FIELD,
    "DOCUMENT_TYPE_INVALID": "document_type",
}


async def proof_upload(request: Request) -> AsyncIterator[UploadFile | None]:
    """The form's file part, or None when no file was chosen. The multipart form
    (and the file's spooled copy) is closed when the request is done, whatever
    happens; the route reads the file only after ``FormDep`` checked the CSRF token."""
    form = await request.form()
    try:
        value = form.get(FILE_FIELD)
        if isinstance(value, UploadFile) and (value.filename or value.size):
            yield value
        else:
            yield None
    finally:
        await form.close()


ProofUploadDep = Annotated[UploadFile | None, Depends(proof_upload)]


def shown_params(request: Request, params: dict[str, Any]) -> dict[str, Any]:
    """A refusal's parameters with status codes in words (``pending_proof`` → 待提交监护证明)."""
    out = dict(params)
    status = out.get("link_status")
    if isinstance(status, str) and status in labels.LINK_STATUS:
        out["link_status"] = t(request, labels.LINK_STATUS[status])
    status = out.get("proof_status")
    if isinstance(status, str) and status in labels.PROOF_STATUS:
        out["proof_status"] = t(request, labels.PROOF_STATUS[status])
    return out


@router.post("/family/links/{link_id}/proof")
def upload_proof(
    link_id: str,
    request: Request,
    upload: ProofUploadDep,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    document_type = form.get("document_type", "")
    # One byte more than allowed at most: an oversized file is still refused by the rule.
    data = upload.file.read(proof_rules.MAX_FILE_BYTES + 1) if upload is not None else None
    values = {"document_type": document_type}
    errors = Errors()
    if not document_type:
        errors.add("document_type", t(request, N_("请选择证明材料的类型")))
    if data is None:
        errors.add(FILE_FIELD, t(request, N_("请选择要上传的照片或 PDF 文件")))
    if errors or data is None:
        return link_page(request, session, rt, principal, link_id, values=values, errors=errors)
    proof, refused = attempt(
        session,
        lambda: proofs.upload(
            session, rt, principal, link_id, document_type=document_type, data=data
        ),
    )
    if refused is not None or proof is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        field = PROOF_FIELDS.get(refused.code, "")
        errors.add(field, domain_text(request, refused.code, shown_params(request, refused.params)))
        return link_page(request, session, rt, principal, link_id, values=values, errors=errors)
    return redirect(request, rt, f"/family/links/{proof.link_id}?done=proof_uploaded")
