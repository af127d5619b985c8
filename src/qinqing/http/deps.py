"""Request-scoped dependencies: the unit of work, the runtime, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from qinqing.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


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
