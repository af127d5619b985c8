"""A region whose policy refuses late payment: after the window, ENROLLMENT_CLOSED."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qinqing.config import Settings
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.family import relogin
from support.resident import balance_of, pay, resident_family


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "policies"
    folder.mkdir()
    # The operator's layer: 重庆市 takes no late payment (the member's region decides).
    (folder / "500000.toml").write_text('[resident]\nlate_payment = "refused"\n', "utf-8")
    return settings.model_copy(update={"policy_dir": folder})


def test_after_the_window_a_refusing_region_is_closed(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    made = resident_family(rt, client, region="500000")
    clock.set(datetime(2027, 1, 5, 2, 0, tzinfo=UTC))
    r = pay(client, made, headers=relogin(client, made.holder))
    assert (r.status_code, r.json()["code"]) == (409, "ENROLLMENT_CLOSED")
    assert r.json()["closed_on"] == "2026-12-31"
    assert balance_of(rt, made) == 100_000


def test_inside_the_window_the_same_region_accepts(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client, region="500000")
    r = pay(client, made)
    assert r.status_code == 201, r.text
    assert r.json()["cover_starts_on"] == "2027-01-01"
