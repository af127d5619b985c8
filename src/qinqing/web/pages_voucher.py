"""出示电子凭证: the e-voucher QR a person shows at the hospital or pharmacy, for
themselves (我的) or for the member of a link they hold (the member's page).

The voucher is ``vouchers.service.issue``'s. The page is the answer to a POST
(出示电子凭证, 刷新), never a GET: the token lives only in the page that shows
it (inside the QR), never in a URL, a cookie, a log or an idempotency record,
and ``Cache-Control: no-store`` keeps it out of every cache. The QR is the
service's own segno SVG, inlined: it carries no script, and the page's CSP
would not run one anyway.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family import service as family
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.persons.service import get_person
from qinqing.runtime import Runtime
from qinqing.vouchers import service as vouchers
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.pages_quota import quota_of_link
from qinqing.web.render import page
from qinqing.web.session import PersonPage

router = APIRouter(include_in_schema=False)
CHINA = ZoneInfo("Asia/Shanghai")
_HANDLER = re.compile(r"\son[a-z]+\s*=|javascript:|<foreignobject")


def safe_svg(svg: str) -> Markup:
    """The service's QR markup, inlined as is: it is our own segno output (paths
    only). A check that it is still that, so a change there cannot slip a
    script or a handler into the page."""
    lowered = svg.lower()
    if not lowered.startswith("<svg") or "<script" in lowered or _HANDLER.search(lowered):
        raise ValueError("unexpected QR markup")
    return Markup(svg)  # noqa: S704 (checked above; our own segno output)


def _whom(
    session: Session, rt: Runtime, principal: Principal, link_id: str | None
) -> dict[str, str | int | None]:
    """Whose voucher it is: the person themselves, or the member of a held link."""
    if link_id is None:
        me = get_person(session, principal.person_id)
        assert me is not None
        return {
            "name": me.name,
            "relation": None,
            "link_id": None,
            "role": "self",
            "quota_available_fen": None,
        }
    link = family.get_link(session, rt, principal, link_id)
    out = link_out(session, rt, link, principal)
    # A member insured in another region pays only from the link's 共济额度: the
    # cashier sees what is available before scanning.
    quota = quota_of_link(session, rt, principal, link_id) if link.via_quota else None
    return {
        "name": out.member.name,
        "relation": out.relation,
        "link_id": out.id,
        "role": out.your_role,
        "status": out.status,
        "quota_available_fen": quota.available_fen if quota else None,
    }


def _action(link_id: str | None) -> str:
    return f"/family/links/{link_id}/voucher" if link_id else "/me/voucher"


def _intro(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | None,
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    whom = _whom(session, rt, principal, link_id)
    if errors is None and whom["role"] == "member":
        # A member shows their own voucher on 我的, not the holder's.
        errors, status_code = Errors(), 403
        errors.add("", domain_text(request, "VOUCHER_HOLDER_ONLY"))
    return page(
        request,
        rt,
        session,
        "voucher.html",
        status_code=status_code if errors else 200,
        whom=whom,
        action=_action(link_id),
        voucher=None,
        **(errors.context() if errors else {}),
    )


def _show(
    request: Request, session: Session, rt: Runtime, principal: Principal, link_id: str | None
) -> Response:
    whom = _whom(session, rt, principal, link_id)
    issued, refused = attempt(session, lambda: vouchers.issue(session, rt, principal, link_id))
    if refused is not None or issued is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        errors = Errors()
        errors.add("", domain_text(request, refused.code, refused.params))
        return _intro(request, session, rt, principal, link_id, errors, refused.status)
    now = rt.clock.now()
    expires: datetime = issued.expires_at
    return page(
        request,
        rt,
        session,
        "voucher.html",
        whom=whom,
        action=_action(link_id),
        voucher={
            "qr": safe_svg(issued.qr_svg),
            "expires_clock": expires.astimezone(CHINA).strftime("%H:%M:%S"),
            "seconds": max(0, int((expires - now).total_seconds())),
        },
    )


@router.get("/me/voucher")
def my_voucher_intro(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _intro(request, session, rt, principal, None)


@router.post("/me/voucher")
def my_voucher(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _show(request, session, rt, principal, None)


@router.get("/family/links/{link_id}/voucher")
def member_voucher_intro(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _intro(request, session, rt, principal, link_id)


@router.post("/family/links/{link_id}/voucher")
def member_voucher(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    return _show(request, session, rt, principal, link_id)
