"""GET /me/notifications: the person's notices, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select

from qinqing.auth.deps import PersonDep
from qinqing.http.deps import CursorPaging, SessionDep
from qinqing.kit.errors import not_found
from qinqing.notify.models import Notification

router = APIRouter(tags=["me"])


class NotificationOut(BaseModel):
    id: str
    kind: str = Field(description="e.g. link.requested, link.bound, link.consented")
    payload: dict[str, Any] = Field(description="ids, codes and amounts only")
    created_at: datetime
    delivered_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_before: str | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )


@router.get(
    "/me/notifications",
    response_model=NotificationPage,
    summary="My notices",
    dependencies=[CursorPaging],
)
def my_notifications(
    principal: PersonDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[
        uuid.UUID | None, Query(description="the id of the last notice of the previous page")
    ] = None,
) -> NotificationPage:
    """Newest first, `limit` (1 to 100) at a time; the next (older) page is
    `before=<next_before>`. An unknown `before` (or another person's notice) is 404;
    `page`, `page_size` or `offset` (offset paging, which this list does not do) is
    422."""
    assert principal.person_id is not None
    mine = Notification.person_id == principal.person_id
    stmt = select(Notification).where(mine)
    if before is not None:
        cursor = session.execute(
            select(Notification).where(mine, Notification.id == before)
        ).scalar_one_or_none()
        if cursor is None:
            raise not_found("notification")
        stmt = stmt.where(
            or_(
                Notification.created_at < cursor.created_at,
                and_(Notification.created_at == cursor.created_at, Notification.id < cursor.id),
            )
        )
    rows = (
        session.execute(
            stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
        )
        .scalars()
        .all()
    )
    page = rows[:limit]
    return NotificationPage(
        items=[
            NotificationOut(
                id=str(n.id),
                kind=n.kind,
                payload=n.payload,
                created_at=n.created_at,
                delivered_at=n.delivered_at,
            )
            for n in page
        ],
        next_before=str(page[-1].id) if len(rows) > limit else None,
    )
