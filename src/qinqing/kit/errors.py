"""Domain errors with stable codes, rendered as RFC 9457 problem+json.

The human text of an error is looked up by its code and the caller's locale
(``i18n``); the code is the contract. Parameters are safe values only (counts,
amounts, field names): never an ID number, phone or secret.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(
        self,
        code: str,
        status: int = 400,
        *,
        commit: bool = False,
        extra: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.params = params
        # Members added to the problem document as they are (e.g. "blockers").
        self.extra = extra or {}
        # The refusal itself changed state (a counted failure) and must persist.
        self.commit = commit

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, status={self.status})"


def not_found(kind: str = "resource") -> DomainError:
    """One answer for unknown and foreign ids alike: it reveals nothing."""
    return DomainError("NOT_FOUND", 404, kind=kind)


def forbidden() -> DomainError:
    return DomainError("FORBIDDEN", 403)
