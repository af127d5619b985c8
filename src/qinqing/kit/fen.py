"""Amounts on the way in: the one type of every ``*_fen`` field of a request.

Money is integer fen. A JSON number with a fraction or an exponent (``100.0``,
``1e2``), a string (``"100"``) or a boolean (``true``, which Python counts as
1) is refused with a 422 naming the field, never coerced: a client that sends
one has a bug, and guessing what it meant moves the wrong amount.

- :data:`Fen` — a JSON integer, 0 … :data:`MAX_FEN`;
- :data:`PositiveFen` — a JSON integer, 1 … :data:`MAX_FEN` (an amount to move);
- :data:`FenQuery` — a query-string amount: decimal digits only, 0 … :data:`MAX_FEN`
  (a query value is text by nature; ``+100``, ``1_000``, `` 100`` or ``100.0``
  are refused all the same).

A field with a tighter ceiling adds it: ``Annotated[Fen, Field(le=...)]``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

# One billion yuan: any larger amount in one field is a typing error.
MAX_FEN = 10**11
_DIGITS = re.compile(r"(?:0|[1-9][0-9]{0,11})")

Fen = Annotated[int, Strict(), Field(ge=0, le=MAX_FEN, description="integer fen (分)")]
PositiveFen = Annotated[int, Strict(), Field(ge=1, le=MAX_FEN, description="integer fen (分)")]


def _query_digits(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise PydanticCustomError(
                "int_type", "Input should be a whole number of fen in decimal digits"
            )
        return int(value)
    return value


# The digits are turned into an int first, then checked like Fen.
FenQuery = Annotated[
    int,
    Strict(),
    Field(ge=0, le=MAX_FEN, description="integer fen (分), decimal digits"),
    BeforeValidator(_query_digits),
]
