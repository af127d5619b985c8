"""Request-scoped dependencies: the unit of work, the runtime, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from qinqing.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def client_address(request: Request) -> str:
    """Who is calling, for the throttles and the audit: the socket peer, or the client
    a trusted proxy named (QINQING_TRUSTED_PROXIES, applied by the proxy-headers
    middleware), never a header from anyone else; "unknown" without either."""
    return request.client.host if request.client else "unknown"


def _session(request: Request) -> Iterator[Session]:
    rt: Runtime = request.app.state.runtime
    with rt.db.unit_of_work() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": commit (or roll back) as soon as the endpoint returns,
# before the response is sent, so a client never sees an uncommitted answer.
# A conflict raised in it (a deadlock, even at commit) propagates out of the
# route, and qinqing.http.retry.RetryConflicts replays the whole request.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


# Query parameters of offset paging (the review queues, bank links: ``page`` and
# ``page_size``), which a list paged by a cursor does not read.
OFFSET_PAGING = ("page", "page_size", "offset")


def cursor_paging(request: Request) -> None:
    """For a list paged by ``limit`` and a ``before`` cursor: ``page``, ``page_size``
    or ``offset`` are refused (422 ``VALIDATION_ERROR``, one error per parameter)
    rather than ignored, which would answer page 1 to ``page=2`` (or to
    ``page=-1``) and let a client page through the same items for ever."""
    given = [name for name in OFFSET_PAGING if name in request.query_params]
    if given:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "type": "unsupported_paging",
                    "msg": "this list pages by `limit` and `before` (the previous page's "
                    "next cursor), not by page number",
                }
                for name in given
            ]
        )


CursorPaging = Depends(cursor_paging)
