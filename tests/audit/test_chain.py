"""The audit log is hash-chained; `audit verify` names the first tampered entry."""

from __future__ import annotations

from sqlalchemy import delete, update
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.audit.service import Actor, record, verify
from qinqing.runtime import Runtime

ACTOR = Actor("operator", "pytest", "admin")


def _append(rt: Runtime, n: int) -> None:
    with rt.db.unit_of_work() as s:
        for i in range(n):
            record(
                s,
                actor=ACTOR,
                action="test.event",
                subject_kind="thing",
                subject_id=f"t{i}",
                at=rt.clock.now(),
                reason=f"reason {i}",
                details={"i": i},
            )


def test_intact_chain_verifies(rt: Runtime) -> None:
    _append(rt, 5)
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert result.ok and result.checked == 5


def test_edited_entry_is_named(rt: Runtime) -> None:
    _append(rt, 5)
    with rt.db.unit_of_work() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(reason="edited"))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == 3


def test_deleted_entry_is_named(rt: Runtime) -> None:
    _append(rt, 5)
    with rt.db.unit_of_work() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == 2


def test_truncated_tail_is_detected(rt: Runtime) -> None:
    _append(rt, 5)
    with rt.db.unit_of_work() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == 5


def test_rehashed_entry_still_breaks_the_next_link(rt: Runtime) -> None:
    """A forger who recomputes an entry's own hash is caught by the following entry."""
    from qinqing.audit.service import _digest, _fields

    _append(rt, 4)
    with rt.db.unit_of_work() as s:
        e = s.get(AuditEntry, 2)
        assert e is not None
        e.reason = "forged"
        e.hash = _digest(e.prev_hash, e.seq, _fields(e))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == 3


def test_cli_verify(rt: Runtime, monkeypatch: object) -> None:
    from qinqing.cli import app

    _append(rt, 3)
    env = {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    assert '"ok": true' in ok.output and '"checked": 3' in ok.output
    with rt.db.unit_of_work() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(action="forged"))
    bad = runner.invoke(app, ["audit", "verify"], env=env)
    assert bad.exit_code == 1
    assert "#2" in bad.output
