"""A batch's answer is written as plain dicts (for speed); it must be exactly what
the documented model (``BatchOut``) renders, key for key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from qinqing.payments.api import batch_body
from qinqing.payments.ops import Outcome, refused
from qinqing.payments.schemas import BatchOut


def test_batch_body_is_what_the_model_renders() -> None:
    when = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    outcomes = [
        Outcome(True, None, uuid.uuid4(), "authorized", 5_000, None, 0, when),
        Outcome(True, None, uuid.uuid4(), "settled", 5_000, 4_000, 1_000, when),
        refused("MUTUAL_AID_UNAVAILABLE", detail="INSUFFICIENT_BALANCE"),
        refused("AUTHORIZE_RATE_LIMITED", retry_after=1_800),
        refused("MUTUAL_AID_UNAVAILABLE", detail="NO_MUTUAL_AID_LINK"),
    ]
    body = batch_body(outcomes, "en")
    assert BatchOut.model_validate(body).model_dump(mode="json") == body
    assert (body["succeeded"], body["failed"]) == (2, 3)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    refusal = body["results"][2]
    # The real reason behind MUTUAL_AID_UNAVAILABLE is never part of the answer.
    assert "INSUFFICIENT_BALANCE" not in str(body)
    assert refusal["message"] and refusal["message"] == body["results"][4]["message"]
    assert body["results"][3]["retry_after"] == 1_800
    assert body["results"][1]["settled_fen"] == 4_000


def test_batch_messages_follow_the_locale() -> None:
    out = [refused("PAYMENT_NOT_FOUND")]
    assert (
        batch_body(out, "zh-CN")["results"][0]["message"]
        != (batch_body(out, "en")["results"][0]["message"])
    )
