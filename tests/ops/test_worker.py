"""`qinqing worker`: each job in one pass, exactly-once delivery with two workers on
PostgreSQL, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks import Webhook
from typer.testing import CliRunner

from qinqing.auth.models import AccessToken
from qinqing.entrypoints.worker import JOBS, Job, Worker
from qinqing.http.idempotency_models import IdempotencyKey
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.notify.sender import deliver
from qinqing.notify.service import enqueue
from qinqing.payments.models import Payment
from qinqing.runtime import Runtime
from qinqing.vouchers.models import Voucher
from support import forkserver
from support.accounts import add_person
from support.banks import add_bank, card_number, link_customer, receiver
from support.family import new_person
from support.forkserver import ForkedProcess
from support.ledger import API, authorize_body, fund, institution_headers, make_family
from support.vouchers import redeem, scene, token_for


def _count(rt: Runtime, model: object, *where: object) -> int:
    with rt.db.unit_of_work() as s:
        stmt = select(func.count()).select_from(model)  # type: ignore[arg-type]
        return int(s.execute(stmt.where(*where)).scalar_one())  # type: ignore[arg-type]


def _something_for_each_job(rt: Runtime, client: TestClient) -> None:
    """A notice, an open hold, a settled payment not yet cleared, a stored idempotent
    answer and a token, all made now."""
    fam = make_family(rt)
    fund(rt, fam.holder_id, 100_000)
    inst = institution_headers(rt, client)
    r = client.post(
        f"{API}/payments/authorize",
        json=authorize_body(fam, 1_000, "worker-1"),
        headers={**inst, "Idempotency-Key": "w-1"},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 2_000, "worker-2"), headers=inst
    )
    assert r.status_code == 201, r.text
    settled = client.post(
        f"{API}/payments/{r.json()['payment_id']}/settle", json={"amount_fen": 2_000}, headers=inst
    )
    assert settled.status_code == 200, settled.text
    with rt.db.unit_of_work() as s:
        enqueue(s, person_id=fam.holder_id, kind="test.notice", at=rt.clock.now())
    # A failed login and an SMS code request (each counted per name and per address).
    r = client.post(f"{API}/auth/login", json={"login": "13700137000", "password": "wrong-pw-1"})
    assert r.status_code == 401, r.text
    _, number = add_person(rt, name="赵六", seq=77, phone="13600136077")
    r = client.post(f"{API}/auth/register/sms-code", json={"id_number": number, "name": "赵六"})
    assert r.status_code == 202, r.text


# What one pass does when each job has one old thing to do.
ONE_OF_EACH = {
    "clear_ledger": 1,  # the settled payment, posted to the hospital's account
    "deliver_notifications": 2,  # the notice, and the settlement's (written by clearing)
    "expire_holds": 1,
    "return_ended_quotas": 0,
    "purge_idempotency_keys": 1,
    "purge_access_tokens": 1,
    "purge_login_throttles": 5,  # login: account + address; SMS: ID number (hour, day) + address
    "purge_registration_codes": 1,
    "deliver_webhooks": 0,
    "purge_voucher_tokens": 0,
}


def test_one_pass_does_each_job(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _something_for_each_job(rt, client)
    clock.advance(timedelta(hours=73))  # past the 72 h hold expiry and the 24 h key retention
    worker = Worker(rt, JOBS)
    done = worker.run_once()
    assert done == ONE_OF_EACH
    assert _count(rt, Notification, Notification.delivered_at.is_(None)) == 0
    assert _count(rt, Payment, Payment.status == "authorized") == 0
    assert _count(rt, IdempotencyKey) == 0 and _count(rt, AccessToken) == 0
    assert set(worker.run_once().values()) == {0}


def test_live_rows_are_left_alone(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _something_for_each_job(rt, client)
    clock.advance(timedelta(minutes=5))
    done = Worker(rt, JOBS).run_once()
    assert done["expire_holds"] == 0 and done["purge_idempotency_keys"] == 0
    assert done["purge_access_tokens"] == 0
    assert _count(rt, Payment, Payment.status == "authorized") == 1


def test_a_failing_job_does_not_stop_the_others(rt: Runtime) -> None:
    def boom(_rt: Runtime, _now: datetime) -> int:
        raise RuntimeError("job broke")

    done = Worker(rt, [Job("boom", boom), Job("fine", lambda _rt, _now: 3)]).run_once()
    assert done == {"boom": -1, "fine": 3}


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
        "QINQING_DATA_DIR": str(rt.settings.data_dir),
    }


def test_cli_once_prints_what_it_did(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    from qinqing.entrypoints.cli import app

    # The CLI runs on the real clock: make everything old enough in real time.
    clock.set(datetime.now(UTC) - timedelta(days=5))
    _something_for_each_job(rt, client)
    out = CliRunner().invoke(app, ["worker", "--once", "--json"], env=_env(rt))
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == ONE_OF_EACH
    text = CliRunner().invoke(app, ["worker", "--once"], env=_env(rt))
    assert text.exit_code == 0 and "deliver_notifications: 0" in text.output


def test_cli_once_delivers_webhooks_and_purges_old_voucher_tokens(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """The worker's own jobs reach a real bank receiver and the voucher look-ups."""
    from qinqing.entrypoints.cli import app

    # Made two days ago in real time (the CLI runs on the real clock): a voucher
    # long expired, and a bank link whose webhook is due.
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    s = scene(rt, client)
    old = token_for(client, s)
    with receiver() as rec:
        bank, secret = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="钱多多", account=False)
        bl = link_customer(client, bank, person.id_number, person.name, card_number(1))
        assert bl.status_code == 202, bl.text
        clock.set(datetime.now(UTC))
        fresh = token_for(client, s)
        out = CliRunner().invoke(app, ["worker", "--once", "--json"], env=_env(rt))
        assert out.exit_code == 0, out.output
        done = json.loads(out.stdout)
        again = CliRunner().invoke(app, ["worker", "--once", "--json"], env=_env(rt))
    assert done["deliver_webhooks"] == 1 and done["purge_voucher_tokens"] == 1
    assert json.loads(again.stdout)["deliver_webhooks"] == 0  # nothing sent twice
    assert len(rec.received) == 1
    assert secret is not None
    headers, raw = rec.received[0]
    event = Webhook(secret).verify(raw, headers)
    assert event["type"] == "bank_link.created" and event["data"]["bank_link_id"] == bl.json()["id"]
    # The expired voucher's look-up is gone (the record stays); a live one still works.
    assert redeem(client, s.inst, old).json()["code"] == "VOUCHER_INVALID"
    assert redeem(client, s.inst, fresh).status_code == 200
    assert _count(rt, Voucher) == 2


def test_two_workers_deliver_each_notice_exactly_once(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; SKIP LOCKED is PostgreSQL's")
    person, _ = add_person(rt)
    with rt.db.unit_of_work() as s:
        for i in range(60):
            enqueue(s, person_id=person.id, kind=f"n{i}", at=rt.clock.now())
    sent: list[uuid.UUID] = []
    lock = threading.Lock()
    # Each worker's first send waits for the other's: both hold their claimed rows at
    # once, which only works if the second skipped the first one's locked rows.
    both_inside = threading.Barrier(2, timeout=60)
    local = threading.local()

    class Recorder:
        def send(self, note: Notification) -> None:
            if not getattr(local, "met", False):
                local.met = True
                both_inside.wait()
            with lock:
                sent.append(note.id)

    recorder = Recorder()
    job = Job("deliver_notifications", lambda r, _now: deliver(r, 10, sender=recorder))

    def run() -> None:
        w = Worker(rt, [job])
        while w.run_once()["deliver_notifications"] > 0:
            pass

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not both_inside.broken
    assert len(sent) == 60 and len(set(sent)) == 60
    assert _count(rt, Notification, Notification.delivered_at.is_(None)) == 0
    assert _count(rt, Notification, Notification.attempts != 1) == 0


def _start(rt: Runtime, *args: str) -> ForkedProcess:
    env = {**os.environ, **_env(rt), "QINQING_LOG_JSON": "false"}
    return forkserver.start(list(args), env)


def _wait_for_start(proc: ForkedProcess) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "worker started" in line:
            return
    pytest.fail(f"worker did not start (exit {proc.wait()})")


def _stop_cleanly(proc: ForkedProcess, *, signalled: bool = False) -> str:
    """SIGTERM (unless already sent); the process exits 0 having said so; its stdout."""
    if not signalled:
        proc.send_signal(signal.SIGTERM)
    stdout, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopping after the current job" in rest and "worker stopped" in rest
    assert "Traceback" not in rest
    return stdout


@pytest.mark.parametrize(
    "command",
    [("worker", "--interval", "0.1"), ("webhooks", "deliver", "--interval", "0.5")],
    ids=["worker", "webhooks-deliver"],
)
def test_sigterm_stops_a_running_worker_cleanly(rt: Runtime, command: tuple[str, ...]) -> None:
    with _start(rt, *command) as proc:
        try:
            _wait_for_start(proc)
            _stop_cleanly(proc)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_sigterm_mid_delivery_lets_the_webhook_under_way_finish(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """A bank receiver still answering when the stop comes: that delivery completes and
    is recorded, the next event is not sent but handed back (due at once, its attempt
    undone, not left claimed until its lease runs out), and the process exits 0."""
    from qinqing.banks.models import WebhookEvent

    clock.set(datetime.now(UTC))
    with receiver(script=["hang"]) as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="孙一", account=False)
        for seq in (2, 3):
            r = link_customer(client, bank, person.id_number, person.name, card_number(seq))
            assert r.status_code == 202, r.text
        with _start(rt, "webhooks", "deliver", "--interval", "0.5") as proc:
            try:
                _wait_for_start(proc)
                for _ in range(1200):  # until the receiver holds the request (or give up)
                    if rec.received or proc.poll() is not None:
                        break
                    threading.Event().wait(0.05)
                assert len(rec.received) == 1, "the delivery never reached the receiver"
                proc.send_signal(signal.SIGTERM)
                rec.release.set()  # the receiver answers 200 only after the stop was asked
                stdout = _stop_cleanly(proc, signalled=True)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert "delivered 1 webhook event(s)" in stdout
    assert len(rec.received) == 1
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(WebhookEvent).order_by(WebhookEvent.id)).scalars().all()
        got = [(e.status, e.attempts) for e in rows]
        due_again = rows[1].next_attempt_at <= datetime.now(UTC)  # the CLI's clock is real
    assert got == [("delivered", 1), ("pending", 0)] and due_again
    assert rec.received[0][0]["webhook-id"] == rows[0].id


def test_a_stopped_pass_hands_unsent_claims_back(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """In process: the stop asked during the first send; the rest go back, and the
    next worker sends them under their own ids."""
    from qinqing.banks.delivery import deliver_webhooks as deliver_now
    from qinqing.banks.models import WebhookEvent

    with receiver() as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="周二", account=False)
        for seq in (4, 5, 6):
            link_customer(client, bank, person.id_number, person.name, card_number(seq))
        assert deliver_now(rt, clock.now(), 10, stop=lambda: bool(rec.received)) == 1
        assert len(rec.received) == 1
        with rt.db.unit_of_work() as s:
            pending = s.execute(
                select(WebhookEvent.attempts).where(WebhookEvent.status == "pending")
            ).scalars()
            assert list(pending) == [0, 0]
        assert Worker(rt, [Job("w", lambda r, now: deliver_now(r, now, 10))]).run_once() == {"w": 2}
    ids = [h["webhook-id"] for h, _ in rec.received]
    assert len(ids) == 3 and len(set(ids)) == 3


@pytest.mark.parametrize(
    "command",
    [("webhooks", "deliver", "--once"), ("worker", "--once")],
    ids=["webhooks-deliver-once", "worker-once"],
)
def test_sigterm_mid_pass_of_a_once_run_loses_nothing_and_sends_nothing_twice(
    rt: Runtime, client: TestClient, clock: FrozenClock, command: tuple[str, ...]
) -> None:
    """`--once` (a cron job's pass) stopped by SIGTERM while a bank is still answering:
    the delivery under way completes and is recorded, the events of the batch not yet
    sent are handed back unsent (no attempt counted, due at once), the process exits 0;
    a later pass sends each of them exactly once, under its own webhook-id."""
    from qinqing.banks.models import WebhookEvent

    clock.set(datetime.now(UTC))
    with receiver(script=["hang"]) as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="孙二", account=False)
        for seq in (4, 5, 6):
            r = link_customer(client, bank, person.id_number, person.name, card_number(seq))
            assert r.status_code == 202, r.text
        with _start(rt, *command) as proc:
            try:
                for _ in range(1200):  # until the receiver holds the first request
                    if rec.received or proc.poll() is not None:
                        break
                    threading.Event().wait(0.05)
                assert len(rec.received) == 1, "the delivery never reached the receiver"
                proc.send_signal(signal.SIGTERM)
                threading.Event().wait(0.3)  # the signal lands while the bank still holds it
                rec.release.set()
                _, err = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert len(rec.received) == 1, "nothing after the stop was sent"
        with rt.db.unit_of_work() as s:
            rows = s.execute(select(WebhookEvent).order_by(WebhookEvent.id)).scalars().all()
            got = [(e.status, e.attempts) for e in rows]
            ids = [e.id for e in rows]
        assert got == [("delivered", 1), ("pending", 0), ("pending", 0)]
        assert rec.received[0][0]["webhook-id"] == ids[0]
        # The next pass sends the two handed back, once each; the first is not sent again.
        again = forkserver.run(
            ["webhooks", "deliver", "--once"],
            {**os.environ, **_env(rt), "QINQING_LOG_JSON": "false"},
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
    sent = [headers["webhook-id"] for headers, _ in rec.received]
    assert sorted(sent) == sorted(ids) and len(set(sent)) == 3
