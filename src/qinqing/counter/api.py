"""Routes of the counter desk (经办机构窗口), for clerks of a region.

Who gets what: anyone not logged in 401; a person, a reviewer, an
administrator or an API client 403 whatever they name (so a 403 tells nothing
about the person or the request); a clerk of another region the same 404 an
unknown ID number, link or request gets.

The answers to writes show the parties masked, even to the clerk: they are
stored for ``Idempotency-Key`` replays, and no table may hold an ID number in
clear. The clerk sees the numbers in full in the look-up.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth.deps import staff_dep
from qinqing.counter import receipt, service
from qinqing.counter.schemas import (
    CounterBindIn,
    CounterPersonOut,
    CounterProofIn,
    CounterProofOut,
    CounterUnbindIn,
    CounterUnbindOut,
    LookupIn,
    LookupOut,
)
from qinqing.family.models import FamilyLink
from qinqing.family.views import LinkOut, link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.http.problems import locale_of
from qinqing.kit import i18n
from qinqing.kit.errors import DomainError
from qinqing.persons.service import person_view
from qinqing.runtime import Runtime
from qinqing.unbind import rules as unbind_rules
from qinqing.unbind.schemas import RequestRef
from qinqing.unbind.service import UnbindRefused

router = APIRouter(prefix="/counter", tags=["counter"])

ClerkDep = Annotated[Principal, staff_dep("clerk")]


def masked_link_out(
    session: Session, rt: Runtime, link: FamilyLink, principal: Principal
) -> LinkOut:
    """An answer to a write (unbind, bind, proof): masked, as every link is unless a
    read is audited for the purpose."""
    return link_out(session, rt, link, principal)


def render_blocker(blocker: unbind_rules.Blocker, locale: str) -> dict[str, Any]:
    """A blocker as the app renders it, except that a verification blocker of the
    ID document speaks of the document (``<CODE>__ID_DOCUMENT`` in the counter's
    messages), not of a payment password."""
    out = unbind_rules.render(blocker, locale)
    variant = f"{blocker.code}__ID_DOCUMENT"
    if "id_document" in blocker.params and variant in i18n.catalog(locale):
        shown = unbind_rules.display_params(blocker.params, locale)
        out["message"], out["hint"] = i18n.text(variant, locale, shown)
    return out


def _refusal(exc: UnbindRefused, locale: str) -> DomainError:
    return DomainError(
        exc.code,
        exc.status,
        commit=exc.commit,
        extra={"blockers": [render_blocker(b, locale) for b in exc.blockers]},
    )


@router.post("/lookup", response_model=LookupOut, summary="Find a person at the counter")
def lookup(body: LookupIn, principal: ClerkDep, session: SessionDep, rt: RuntimeDep) -> LookupOut:
    """The person with this ID number, their insurance status and scheme, and their
    family links as holder and as member.

    The ID number and phone are shown in full for a person of the clerk's region.
    Every look-up is recorded in the audit log with the clerk and the `reason`.
    An unknown number, or a person the clerk's region has nothing to do with,
    is 404 `NOT_FOUND` (the same answer); a malformed number 422 `ID_NUMBER_*`.
    """
    found = service.lookup(session, rt, principal, body.id_number, body.reason)
    view = person_view(rt.vault, found.person, reveal=found.reveal)
    return LookupOut(
        person=CounterPersonOut(
            id=view["id"],
            name=view["name"],
            id_number=view["id_number"],
            phone=view["phone"],
            sex=view["sex"],
            birth_date=view["birth_date"],
            status=view["status"],
            scheme=view["scheme"],
            region_code=view["region_code"],
            region_name=rt.policies.region(found.person.region_code).name,
        ),
        # The look-up is audited (counter.lookup): a clerk sees their region's links
        # in full.
        as_holder=[link_out(session, rt, x, principal, reveal=True) for x in found.as_holder],
        as_member=[link_out(session, rt, x, principal, reveal=True) for x in found.as_member],
        id_document_locked_until=found.id_document_locked_until,
    )


@router.post("/unbind", response_model=CounterUnbindOut, summary="Unbind at the counter")
def unbind(
    body: CounterUnbindIn,
    request: Request,
    principal: ClerkDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """解除绑定 for the party who came to the counter, with their ID document and the
    paper form's number.

    The document must be that party's: a mismatch is the blocker
    `VERIFICATION_FAILED` (with `remaining_attempts`) and counts towards the
    lockout (`VERIFICATION_LOCKED` after 5 in a row, for 3 hours). Every other
    condition is the app's (409 `UNBIND_REFUSED` with every blocker), and the
    region's review applies: `request.status` is `completed` or `pending_review`.
    Send an `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, CounterUnbindOut]:
        outcome = service.unbind(
            session,
            rt,
            principal,
            link_id=body.link_id,
            on_behalf_of=body.on_behalf_of,
            document=service.Document(body.id_document.type, body.id_document.number),
            form_number=body.form_number,
            reason=body.reason,
        )
        return 200, CounterUnbindOut(
            request=RequestRef(id=str(outcome.request.id), status=outcome.request.status),
            link=masked_link_out(session, rt, outcome.link, principal),
        )

    try:
        return run_for_request(
            request, session, rt, principal, key, body.model_dump(mode="json"), handler
        )
    except UnbindRefused as exc:
        raise _refusal(exc, locale_of(request)) from None


@router.post("/bind", status_code=201, response_model=LinkOut, summary="Bind on a holder's behalf")
def bind(
    body: CounterBindIn,
    request: Request,
    principal: ClerkDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """绑定 for a holder of the clerk's region who came to the counter with the member.

    Both ID documents (type, number, name) are attested by the clerk; the member
    consents at the counter, so the link is `active` at once. The binding rules
    are the app's (`SELF_LINK`, `RELATION_NOT_ADMITTED`, ... `ONE_DIRECTION`).
    An unknown holder, or one of another region, is 404 `NOT_FOUND`; an unknown
    member (or a wrong name) 422 `MEMBER_NOT_FOUND`. The answer shows the parties
    masked. Send an `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, LinkOut]:
        holder, member = body.holder_id_document, body.member_id_document
        link = service.bind(
            session,
            rt,
            principal,
            holder=service.Document(holder.type, holder.number, holder.name),
            member=service.Document(member.type, member.number, member.name),
            relation=body.relation,
            mutual_aid=body.mutual_aid,
            yearly_limit_fen=body.mutual_aid_yearly_limit_fen,
            form_number=body.form_number,
            reason=body.reason,
        )
        return 201, masked_link_out(session, rt, link, principal)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.post(
    "/links/{link_id}/proof",
    response_model=CounterProofOut,
    summary="The guardianship proof of a minor's binding, seen at the counter",
)
def proof(
    link_id: str,
    body: CounterProofIn,
    request: Request,
    principal: ClerkDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """A clerk of the **member's** region saw the 出生医学证明, the 户口本 or a court's
    guardianship document for a `pending_proof` link: the link becomes `active`
    (the binding rules decided again). 404 for a link the clerk's region does not
    serve; 409 `LINK_NOT_PENDING_PROOF`; 422 `DOCUMENT_NUMBER_INVALID`,
    `FORM_NUMBER_INVALID`. The receipt says what was seen. Send an
    `Idempotency-Key` to make a retry safe."""

    def handler() -> tuple[int, CounterProofOut]:
        proof, link = service.accept_proof(
            session,
            rt,
            principal,
            link_id,
            document_type=body.document.type,
            document_number=body.document.number,
            form_number=body.form_number,
        )
        return 200, CounterProofOut(
            proof_id=str(proof.id),
            link=masked_link_out(session, rt, link, principal),
            receipt_url=f"/api/v1/counter/link-proofs/{proof.id}/receipt.pdf",
        )

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.get(
    "/link-proofs/{proof_id}/receipt.pdf",
    response_class=Response,
    summary="The printed receipt (回执) of a guardianship proof seen at the counter",
    responses={
        200: {
            "description": "The receipt, an A5 PDF",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def proof_receipt_pdf(
    proof_id: str, principal: ClerkDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The receipt of a guardianship proof seen at a counter of the clerk's region
    (the member's): the document (its number masked), the form number, the link
    (parties masked), the time and the clerk. Other proofs: 404."""
    data = service.proof_receipt(session, rt, principal, proof_id)
    return receipt.as_response(data, disposition="inline")


@router.get(
    "/unbind-requests/{request_id}/receipt.pdf",
    response_class=Response,
    summary="The printed receipt (回执)",
    responses={
        200: {
            "description": "The receipt, an A5 PDF",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def receipt_pdf(
    request_id: str, principal: ClerkDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The receipt of an unbind made at a counter of the clerk's region: the agency,
    the clerk who handled it, the form number, the link (parties masked), the
    time in Beijing time, the outcome (解除成功 / 审核中, or the reviewer's
    decision) and the request id. Other requests: 404."""
    data = service.receipt(session, rt, principal, request_id)
    return receipt.as_response(data, disposition="inline")
