"""What the accounts tell their owner: events the notices subscribe to.

``auth`` sits below ``notify`` in the layers, so an account change (a login while
another session is live, a new password) is announced on the runtime's event bus
and ``notify.subscribers`` turns it into the person's notice, in the same
transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NEW_LOGIN = "account.new_login"
PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - a notice kind
PASSWORD_RESET = "account.password_reset"  # noqa: S105 - a notice kind
PHONE_CHANGED = "account.phone_changed"
PAYMENT_PASSWORD_RESET = "account.payment_password_reset"  # noqa: S105 - a notice kind


@dataclass(frozen=True, slots=True)
class AccountNotice:
    person_id: uuid.UUID
    kind: str
    at: datetime
    # Ids and codes only: the default sender logs it.
    payload: dict[str, Any] = field(default_factory=dict)
