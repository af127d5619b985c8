"""What the persons part announces (``kit.events``): the registry changed known
persons. Published by a re-import (``persons.import_changes``) inside its
transaction; the parts above subscribe (``entrypoints.bootstrap``): links the
change ends (``unbind.registry``), the resident contributions of a member who
left the resident scheme (``resident.registry``).

Two events, so that every lock is taken in the global order (docs/ledger.md,
"Lock order"): :class:`PersonsChanging` before the persons' rows are locked
(subscribers lock what comes before persons: the family links the change will
end), then :class:`PersonsChanged` once every change is written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The fields a re-import applies, in report order. ``phone`` is shown masked
# (``138****0001``); ``guardians`` as how many are registered (only blind indexes
# of their ID numbers are kept, so there is nothing else to show).
FIELDS = ("region_code", "scheme", "status", "phone", "guardians")


@dataclass(frozen=True, slots=True)
class PersonChanged:
    """One person's changed fields, ``field -> (old, new)``, from line ``line`` of the
    import (``None`` when not from a file)."""

    person_id: uuid.UUID
    fields: Mapping[str, tuple[Any, Any]]
    at: datetime
    line: int | None = None

    def new(self, name: str) -> Any:
        """The field's new value, or None when it did not change."""
        pair = self.fields.get(name)
        return None if pair is None else pair[1]


@dataclass(frozen=True, slots=True)
class PersonsChanging:
    """About to apply ``changes`` (read before any lock: the planned changes). Take
    the locks that come before the persons' rows; change nothing yet."""

    changes: tuple[PersonChanged, ...]


@dataclass(frozen=True, slots=True)
class PersonsChanged:
    """``changes`` are written (the persons' rows locked and updated), at ``at``."""

    changes: tuple[PersonChanged, ...]
    at: datetime
