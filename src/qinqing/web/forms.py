"""Forms: the posted fields (after the CSRF check), refusals as GOV.UK-style errors."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.http.idempotency import check_key, run_idempotent
from qinqing.kit import i18n
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from qinqing.unbind.rules import display_params
from qinqing.web.session import CSRF_FIELD, check_csrf, prefs_of

T = TypeVar("T")
MAX_FIELD = 1000
_YUAN = re.compile(r"(\d{1,9})(?:\.(\d{1,2}))?")


async def form_fields(request: Request) -> dict[str, str]:
    """The posted text fields; refused (CsrfRefused) unless the CSRF token matches."""
    form = await request.form()
    data: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            data[key] = value[:MAX_FIELD]
    check_csrf(request, request.app.state.runtime, data.get(CSRF_FIELD))
    return data


FormDep = Annotated[dict[str, str], Depends(form_fields)]


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # the id of the input the summary links to ("" for the whole form)
    text: str


class Errors:
    """Errors in the order they are found: one summary at the top, one message per field."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, text: str) -> None:
        self.items.append(FieldError(field, text))

    def __bool__(self) -> bool:
        return bool(self.items)

    def context(self) -> dict[str, Any]:
        by_field: dict[str, str] = {}
        for item in self.items:
            if item.field:
                by_field.setdefault(item.field, item.text)
        return {"errors": by_field, "error_list": self.items}


def domain_text(request: Request, code: str, params: dict[str, Any] | None = None) -> str:
    """A refusal's message and what to do about it, in the visitor's language."""
    locale = prefs_of(request).locale
    message, hint = i18n.text(code, locale, display_params(params or {}, locale))
    return f"{message}{' ' if locale == 'en' else ''}{hint}" if hint else message


def yuan_to_fen(text: str) -> int | None:
    """``"2000"`` / ``"2000.5"`` yuan -> fen, exactly; None if it is not an amount
    (the forms that take an amount in 元: a yearly limit, a quota top-up)."""
    m = _YUAN.fullmatch(text.strip().replace(",", ""))
    if m is None:
        return None
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def attempt(session: Session, action: Callable[[], T]) -> tuple[T | None, DomainError | None]:
    """Run a service call for a form; a refusal is returned, not raised, so the
    form can be shown again. The transaction ends exactly as the unit of work
    would end it: a refusal that changed state (``commit``) is committed, any
    other is rolled back, and the page goes on in a fresh transaction."""
    try:
        return action(), None
    except DomainError as exc:
        if exc.commit:
            session.commit()
        else:
            session.rollback()
        return None, exc


def new_form_key() -> str:
    return uuid.uuid4().hex


def form_key(form: dict[str, str]) -> str:
    """The form's idempotency key: a double-clicked submit is answered once."""
    try:
        return check_key(form.get("idempotency_key") or None) or new_form_key()
    except DomainError:
        return new_form_key()


def once(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    key: str,
    body: dict[str, Any],
    handler: Callable[[], tuple[int, Any]],
) -> dict[str, Any]:
    """The API's idempotency layer for a form post: the same key replays the answer."""
    response = run_idempotent(
        session,
        vault=rt.vault,
        principal=principal,
        key=key,
        method="POST",
        path=request.url.path,
        body=body,
        now=rt.clock.now(),
        handler=handler,
    )
    answer: dict[str, Any] = json.loads(bytes(response.body))
    return answer
