"""The audit log is a keyed hash chain with a signed head checkpoint; `audit verify`
names the first tampered entry and tells a rewrite from a truncated tail."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from qinqing.audit.actor import Actor
from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.audit.service import record, verify
from qinqing.identity.vault import Vault
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
    from qinqing.audit.service import _fields, digest

    _append(rt, 4)
    with rt.db.unit_of_work() as s:
        e = s.get(AuditEntry, 2)
        assert e is not None
        e.reason = "forged"
        e.hash = digest(rt.vault, e.prev_hash, e.seq, _fields(e))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == 3


def _sha256_rechain(rt: Runtime, forge: object) -> None:
    """What an attacker without the key can do: rewrite entries, then recompute every
    later hash and the head the way an unkeyed chain would be computed."""
    from qinqing.audit.service import _fields

    with rt.db.unit_of_work() as s:
        prev = "0" * 64
        rows = s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        for e in rows:
            if callable(forge):
                forge(e)
            body = json.dumps(
                {"prev": prev, "seq": e.seq, **_fields(e)},
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
                default=str,
            )
            e.prev_hash, e.hash = prev, hashlib.sha256(body.encode()).hexdigest()
            prev = e.hash
        s.execute(update(AuditHead).values(seq=len(rows), hash=prev))


def test_rewritten_and_rechained_entry_is_tampered(rt: Runtime) -> None:
    _append(rt, 5)

    def forge(e: AuditEntry) -> None:
        if e.seq == 3:
            e.reason = "nothing happened here"

    _sha256_rechain(rt, forge)
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.status == "tampered" and result.first_bad_seq == 1


def test_rechained_under_another_key_is_tampered(rt: Runtime) -> None:
    """Even a well-formed keyed chain is refused when the key is not ours."""
    from qinqing.audit.service import _fields, digest, head_mac

    _append(rt, 3)
    thief = Vault(bytes(range(32)))
    with rt.db.unit_of_work() as s:
        prev = "0" * 64
        rows = s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        for e in rows:
            e.reason = "rewritten"
            e.prev_hash, e.hash = prev, digest(thief, prev, e.seq, _fields(e))
            prev = e.hash
        s.execute(update(AuditHead).values(seq=3, hash=prev, mac=head_mac(thief, 3, prev)))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert result.status == "tampered" and result.first_bad_seq == 1


def test_truncated_tail_with_the_head_moved_back_is_truncated(rt: Runtime) -> None:
    """Cutting off the last entries and pointing the head at the new last one."""
    _append(rt, 6)
    with rt.db.unit_of_work() as s:
        fourth = s.get(AuditEntry, 4)
        assert fourth is not None
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 4))
        s.execute(update(AuditHead).values(seq=4, hash=fourth.hash))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert not result.ok and result.status == "truncated" and result.checked == 4


def test_truncated_tail_alone_is_truncated(rt: Runtime) -> None:
    _append(rt, 6)
    with rt.db.unit_of_work() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 4))
    with rt.db.unit_of_work() as s:
        result = verify(s)
    assert result.status == "truncated" and result.first_bad_seq == 5
    assert result.head_seq == 6 and "6" in (result.problem or "")


def test_an_intact_chain_reports_its_checkpoint(rt: Runtime) -> None:
    _append(rt, 2)
    with rt.db.unit_of_work() as s:
        result = verify(s)
        head = s.get(AuditHead, 1)
        assert head is not None
    assert result.status == "intact" and result.head_seq == 2 and result.head_hash == head.hash


def test_cli_verify(rt: Runtime, monkeypatch: object) -> None:
    from qinqing.entrypoints.cli import app

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
    assert "#2" in bad.output and "tampered" in bad.output


def test_cli_verify_reports_truncation(rt: Runtime) -> None:
    from qinqing.entrypoints.cli import app

    _append(rt, 3)
    with rt.db.unit_of_work() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    env = {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }
    out = CliRunner().invoke(app, ["audit", "verify", "--json"], env=env)
    assert out.exit_code == 1
    assert json.loads(out.output)["status"] == "truncated"


def test_an_external_checkpoint_catches_a_restored_older_copy(rt: Runtime) -> None:
    """A whole older database has a consistent head of its own; only a checkpoint kept
    outside shows that entries are gone."""
    from qinqing.audit.service import head_mac

    _append(rt, 5)
    with rt.db.unit_of_work() as s:
        seen = verify(s)
        third = s.get(AuditEntry, 3)
        assert third is not None
        # What the copy of two entries ago looked like: three entries, its head signed.
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 3))
        s.execute(
            update(AuditHead).values(seq=3, hash=third.hash, mac=head_mac(rt.vault, 3, third.hash))
        )
    with rt.db.unit_of_work() as s:
        assert verify(s).ok  # consistent on its own
        restored = verify(s, expect=(seen.head_seq, seen.head_hash))
    assert restored.status == "truncated" and "5" in (restored.problem or "")
    with rt.db.unit_of_work() as s:
        assert verify(s, expect=(3, third.hash)).ok
        assert verify(s, expect=(2, "f" * 64)).status == "tampered"


def test_cli_verify_with_an_external_checkpoint(rt: Runtime) -> None:
    from qinqing.entrypoints.cli import app

    _append(rt, 2)
    env = {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }
    runner = CliRunner()
    first = json.loads(runner.invoke(app, ["audit", "verify", "--json"], env=env).output)
    checkpoint = f"{first['head']['count']}:{first['head']['hash']}"
    assert runner.invoke(app, ["audit", "verify", "--expect", checkpoint], env=env).exit_code == 0
    assert runner.invoke(app, ["audit", "verify", "--expect", "3:xyz"], env=env).exit_code == 1
    wrong = runner.invoke(app, ["audit", "verify", "--expect", "2:" + "0" * 64], env=env)
    assert wrong.exit_code == 1 and "tampered" in wrong.output
