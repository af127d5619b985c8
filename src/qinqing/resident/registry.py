"""A member who left the resident scheme, noted on what was paid for them (共济缴费,
docs/guide.md §3.4).

When the registry (``persons import``, ``persons.events``) says a member left the
城乡居民医保 — their scheme changed from ``resident`` to another, or their
insurance ended (``terminated``, ``deceased``) while in it — each resident
contribution paid for them for a cover year not yet over (this year's or a later
one, China time) gets ``member_left_scheme_at``, in the same transaction. The
collector of the member's region sees it in its list (``GET
/resident-contributions``) and knows that the cover paid for may not be used.
The contribution itself is money already remitted: it is not undone here. The
first time counts; a later change does not move it.

The paid years are found through ``resident_cover_years`` (the member's shard),
then each contribution is updated by its key on the holder's shard. No row here
is locked by another path in a way that could wait on the import: payments insert
new contributions, they never update one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qinqing.kit.clock import china_date
from qinqing.kit.events import EventBus
from qinqing.persons.events import PersonChanged, PersonsChanged
from qinqing.persons.models import ENDED_STATUSES, Person, Scheme
from qinqing.resident.models import ResidentContribution, ResidentCoverYear

RESIDENT = Scheme.resident.value


_BATCH = 1000


def _batches(items: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def left_scheme(change: PersonChanged, person: Person) -> bool:
    """Did this change take the person (stored as ``person``, after the change) out of
    the resident scheme?"""
    scheme = change.fields.get("scheme")
    was_resident = (scheme[0] if scheme else person.scheme) == RESIDENT
    if not was_resident:
        return False
    if person.scheme != RESIDENT:
        return True
    status = change.fields.get("status")
    return status is not None and status[1] in ENDED_STATUSES and status[0] not in ENDED_STATUSES


def note_left_scheme(session: Session, event: PersonsChanged) -> int:
    """Note the members who left on their contributions; how many were noted."""
    candidates = [c for c in event.changes if "scheme" in c.fields or "status" in c.fields]
    if not candidates:
        return 0
    persons = {
        p.id: p
        for batch in _batches([c.person_id for c in candidates])
        for p in session.execute(
            select(Person).where(Person.id.in_(batch)).execution_options(populate_existing=True)
        ).scalars()
    }
    members = [c.person_id for c in candidates if left_scheme(c, persons[c.person_id])]
    if not members:
        return 0
    year = china_date(event.at).year
    keys = sorted(
        (
            (holder_id, contribution_id)
            for batch in _batches(members)
            for holder_id, contribution_id in session.execute(
                select(ResidentCoverYear.holder_id, ResidentCoverYear.contribution_id).where(
                    ResidentCoverYear.member_id.in_(batch), ResidentCoverYear.year >= year
                )
            )
        ),
        key=lambda k: (str(k[0]), str(k[1])),
    )
    noted = 0
    for holder_id, contribution_id in keys:
        result = session.execute(
            update(ResidentContribution)
            .where(
                ResidentContribution.holder_id == holder_id,
                ResidentContribution.id == contribution_id,
                ResidentContribution.member_left_scheme_at.is_(None),
            )
            .values(member_left_scheme_at=event.at)
            .execution_options(synchronize_session=False)
        )
        noted += int(getattr(result, "rowcount", 0) or 0)
    return noted


def install(bus: EventBus) -> None:
    bus.subscribe(PersonsChanged, note_left_scheme)
