"""The outbox: notices written with the change, GET /me/notifications, delivery."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.entrypoints.cli import app as cli_app
from qinqing.family import service
from qinqing.family.models import FamilyLink
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.notify.sender import MAX_ATTEMPTS, LogSender, deliver
from qinqing.runtime import Runtime
from support.databases import TEST_KEY
from support.family import API, bind, make_active_link, new_person, principal_of
from support.guardians import register_guardians


def _count(rt: Runtime, *where: object) -> int:
    with rt.db.unit_of_work() as s:
        stmt = select(func.count()).select_from(Notification)
        for cond in where:
            stmt = stmt.where(cond)  # type: ignore[arg-type]
        return int(s.execute(stmt).scalar_one())


def test_notices_commit_or_roll_back_with_the_link(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    kid = new_person(rt, born=date(2015, 1, 1), sex="F", account=False)
    register_guardians(rt, kid.id_number, holder.id_number)
    principal = principal_of(rt, holder.id)
    with pytest.raises(RuntimeError), rt.db.unit_of_work() as s:
        service.bind(
            s,
            rt,
            principal,
            member_id_number=kid.id_number,
            member_name=kid.name,
            relation="child",
            mutual_aid=False,
        )
        assert s.execute(select(func.count()).select_from(Notification)).scalar_one() == 2
        raise RuntimeError("the request fails after the bind")
    assert _count(rt) == 0
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(FamilyLink)).scalar_one() == 0


def test_my_notifications_newest_first_and_paged(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    holder = new_person(rt, client=client)
    kids = [new_person(rt, born=date(2014, 1, 1 + i), sex="F", account=False) for i in range(5)]
    for kid in kids:
        register_guardians(rt, kid.id_number, holder.id_number)
        assert bind(client, holder.headers, kid.id_number, kid.name, "child").status_code == 201
        clock.advance(timedelta(seconds=1 if kid is not kids[2] else 0))
    url = f"{API}/me/notifications"
    r = client.get(url, headers=holder.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["items"]) == 5 and page["next_before"] is None
    created = [n["created_at"] for n in page["items"]]
    assert created == sorted(created, reverse=True)
    first = page["items"][0]
    assert first["kind"] == "link.bound" and first["delivered_at"] is None
    assert set(first["payload"]) == {"link_id", "relation", "mutual_aid", "your_role"}

    seen: list[str] = []
    before: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if before:
            params["before"] = before
        body = client.get(url, headers=holder.headers, params=params).json()
        seen += [n["id"] for n in body["items"]]
        before = body["next_before"]
        if before is None:
            break
    assert seen == [n["id"] for n in page["items"]]

    # Another person's notice id is as unknown as a made-up one.
    other = new_person(rt, client=client)
    r = client.get(url, headers=other.headers)
    assert r.json() == {"items": [], "next_before": None}
    r = client.get(url, headers=other.headers, params={"before": seen[0]})
    assert r.status_code == 404
    assert client.get(url, headers=other.headers, params={"before": "nope"}).status_code == 422
    assert client.get(url, headers=other.headers, params={"limit": 0}).status_code == 422
    assert client.get(url).status_code == 401


def test_deliver_marks_delivered_and_logs_no_personal_data(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    made = make_active_link(rt, client)
    pending = _count(rt, Notification.delivered_at.is_(None))
    assert pending >= 2
    with caplog.at_level(logging.INFO, logger="qinqing.notify"):
        assert deliver(rt, limit=1) == 1
        assert deliver(rt) == pending - 1
        assert deliver(rt) == 0
    assert _count(rt, Notification.delivered_at.is_(None)) == 0
    with rt.db.unit_of_work() as s:
        assert set(s.execute(select(Notification.attempts)).scalars()) == {1}
    text = caplog.text
    assert "link.requested" in text and "link.consented" in text
    for secret in (
        made.holder.id_number,
        made.member.id_number,
        made.holder.phone,
        made.member.phone,
    ):
        assert secret not in text
    assert made.member.name not in text
    r = client.get(f"{API}/me/notifications", headers=made.member_headers)
    assert all(n["delivered_at"] is not None for n in r.json()["items"])


class FailingSender:
    def send(self, note: Notification) -> None:
        raise ConnectionError("gateway down")


def test_a_failed_send_is_retried_then_left_alone(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    kid = new_person(rt, born=date(2015, 1, 1), sex="F", account=False)
    register_guardians(rt, kid.id_number, holder.id_number)
    bind(client, holder.headers, kid.id_number, kid.name, "child")
    assert deliver(rt, sender=FailingSender()) == 0
    with rt.db.unit_of_work() as s:
        assert set(s.execute(select(Notification.attempts)).scalars()) == {1}
    for _ in range(MAX_ATTEMPTS - 1):
        deliver(rt, sender=FailingSender())
    assert deliver(rt, sender=LogSender()) == 0  # given up after MAX_ATTEMPTS
    assert _count(rt, Notification.delivered_at.is_(None)) == 2


def test_cli_deliver(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_active_link(rt, client)
    pending = _count(rt, Notification.delivered_at.is_(None))
    monkeypatch.setenv("QINQING_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("QINQING_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("QINQING_ENV", "test")
    monkeypatch.setenv("QINQING_DATA_DIR", str(tmp_path / "cli-data"))
    result = CliRunner().invoke(cli_app, ["notify", "deliver", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"delivered": pending}
    result = CliRunner().invoke(cli_app, ["notify", "deliver"])
    assert result.exit_code == 0, result.output
    assert "delivered 0" in result.stdout
    with rt.db.unit_of_work() as s:
        entry = s.execute(
            select(AuditEntry).where(AuditEntry.action == "notify.deliver")
        ).scalar_one()
        assert entry.channel == "admin" and entry.details == {"delivered": pending}
