"""The database's key check (a wrong QINQING_SECRET_KEY refuses to start) and key
rotation (`qinqing keys rotate`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import LargeBinary, select
from typer.testing import CliRunner

from qinqing.access.principal import Principal
from qinqing.audit.service import verify
from qinqing.config import Settings
from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.bootstrap import StartupError, build_runtime
from qinqing.http import idempotency
from qinqing.identity import keys
from qinqing.identity.vault import Vault, generate_key, parse_key
from qinqing.kit.clock import FrozenClock
from qinqing.ops import keys as rotation
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number, id_number_of
from qinqing.runtime import Runtime
from qinqing.schema.models import Base
from support.accounts import add_person, login, register
from support.client import AppClient
from support.databases import TEST_KEY

OTHER_KEY = generate_key()
CALLER = Principal("person", "acct-1", "app", "t", None)


def _with_key(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"secret_key": key})


def _env(rt: Runtime, key: str, **extra: str) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": key,
        "QINQING_ENV": "test",
        "QINQING_DATA_DIR": str(rt.settings.data_dir),
        **extra,
    }


def test_a_wrong_key_refuses_to_start_and_names_the_problem(rt: Runtime) -> None:
    with pytest.raises(StartupError) as err:
        build_runtime(_with_key(rt.settings, OTHER_KEY), migrate=False)
    assert "key check failed" in str(err.value)
    assert OTHER_KEY not in str(err.value) and TEST_KEY not in str(err.value)


def test_the_right_key_starts_again(rt: Runtime) -> None:
    again = build_runtime(rt.settings, migrate=False)
    assert again.vault.version == 1
    again.db.dispose()


def test_cli_with_a_wrong_key_imports_nothing(rt: Runtime, tmp_path: Path) -> None:
    """Before the check, another key made the import insert a duplicate person."""
    from qinqing.entrypoints.cli import app
    from support.factories import person_row, write_persons_csv

    _, number = add_person(rt, name="钱七")
    csv_file = tmp_path / "p.csv"
    write_persons_csv(csv_file, [person_row(number, "钱七")])
    out = CliRunner().invoke(app, ["persons", "import", str(csv_file)], env=_env(rt, OTHER_KEY))
    # persons import exits 1 when nothing was imported (2 would mean "some refused").
    assert out.exit_code == 1 and "key check failed" in out.output
    with rt.db.unit_of_work() as s:
        assert len(s.execute(select(Person.id)).all()) == 1


def test_serve_with_a_wrong_key_refuses_to_start(rt: Runtime) -> None:
    from qinqing.entrypoints.cli import app

    out = CliRunner().invoke(app, ["serve", "--port", "1"], env=_env(rt, OTHER_KEY))
    assert out.exit_code == 2 and "key check failed" in out.output


def test_readyz_fails_once_the_key_no_longer_matches(rt: Runtime, client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    rotation.rotate(rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(OTHER_KEY)), rt.clock.now)
    r = client.get("/readyz")
    assert r.status_code == 503 and "retired key" in r.json()["secret_key"]


def _populate(rt: Runtime, client: TestClient) -> tuple[str, str]:
    for seq in range(2, 7):
        add_person(rt, name=f"人{seq}", seq=seq, phone=f"1390000000{seq}")
    _, number = add_person(rt, name="孙八", phone="13687654321")
    register(client, number, "孙八", "13687654321")
    with rt.db.unit_of_work() as s:
        idempotency.run_idempotent(
            s,
            vault=rt.vault,
            principal=CALLER,
            key="k1",
            method="POST",
            path="/x",
            body={"a": 1},
            now=rt.clock.now(),
            handler=lambda: (201, {"id_number": number}),
        )
    return number, "13687654321"


def _check_under(settings: Settings, clock: FrozenClock, number: str, phone: str) -> None:
    rt2 = build_runtime(settings, clock=clock, migrate=False)
    try:
        assert rt2.vault.version == 2
        with rt2.db.unit_of_work() as s:
            person = find_by_id_number(s, rt2.vault, number)
            assert person is not None and id_number_of(rt2.vault, person) == number
            assert verify(s).status == "intact"
            row = s.execute(select(idempotency.IdempotencyKey)).scalar_one()
            assert idempotency.open_answer(rt2.vault, row.caller, row.key, row.response) == {
                "id_number": number
            }
        with AppClient(create_app(rt2)) as c:
            login(c, phone)
            assert c.get("/readyz").status_code == 200
    finally:
        rt2.db.dispose()


def test_rotation_moves_everything_to_the_new_key(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    number, phone = _populate(rt, client)
    counts = rotation.rotate(
        rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(OTHER_KEY)), clock.now, batch=2
    )
    assert counts["persons"] == 6 + 6 and counts["person_accounts"] == 1
    assert counts["idempotency_keys"] == 1 and counts["audit_log"] >= 1
    _check_under(_with_key(rt.settings, OTHER_KEY), clock, number, phone)
    with pytest.raises(StartupError, match="retired key"):
        build_runtime(rt.settings, migrate=False)


def test_rotation_with_one_lock_per_row_moves_everything(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """The cluster's way of locking (each batch's keys read unlocked, then every row
    locked by its own key), here on any database."""
    number, phone = _populate(rt, client)
    rt.db.sessions.configure(info={"vault": rt.vault, "one_lock_per_row": True})
    counts = rotation.rotate(
        rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(OTHER_KEY)), clock.now, batch=2
    )
    assert counts["persons"] == 6 + 6 and counts["person_accounts"] == 1
    assert counts["idempotency_keys"] == 1
    _check_under(_with_key(rt.settings, OTHER_KEY), clock, number, phone)


@pytest.mark.parametrize("where", [("persons", 4), ("audit chain", 1)])
def test_an_interrupted_rotation_blocks_starts_and_resumes(
    rt: Runtime, client: TestClient, clock: FrozenClock, where: tuple[str, int]
) -> None:
    number, phone = _populate(rt, client)

    class Stop(Exception):
        pass

    def interrupt(step: str, done: int, total: int) -> None:
        if step.startswith(where[0]) and done >= where[1]:
            raise Stop

    with pytest.raises(Stop):
        rotation.rotate(
            rt.db,
            Vault(parse_key(TEST_KEY)),
            Vault(parse_key(OTHER_KEY)),
            clock.now,
            batch=2,
            progress=interrupt,
        )
    for key in (TEST_KEY, OTHER_KEY):
        with pytest.raises(StartupError, match="rotation"):
            build_runtime(_with_key(rt.settings, key), migrate=False)
    assert client.get("/readyz").status_code == 503
    # A different new key may not take over the half-done rotation.
    with pytest.raises(rotation.RotationError, match="different new key"):
        rotation.rotate(
            rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(generate_key())), clock.now
        )
    rotation.rotate(rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(OTHER_KEY)), clock.now)
    _check_under(_with_key(rt.settings, OTHER_KEY), clock, number, phone)


def test_cli_rotate_takes_the_new_key_from_the_environment(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    from qinqing.entrypoints.cli import app

    number, phone = _populate(rt, client)
    runner = CliRunner()
    missing = runner.invoke(app, ["keys", "rotate"], env=_env(rt, TEST_KEY))
    assert missing.exit_code == 1 and "QINQING_NEW_SECRET_KEY" in missing.output
    out = runner.invoke(
        app,
        ["keys", "rotate", "--json"],
        env=_env(rt, TEST_KEY, QINQING_NEW_SECRET_KEY=OTHER_KEY),
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["rotated"] is True
    assert OTHER_KEY not in out.output
    _check_under(_with_key(rt.settings, OTHER_KEY), clock, number, phone)


def test_every_ciphertext_column_is_known_to_the_rotation() -> None:
    """A ciphertext column the rotation skipped would be unreadable after it."""
    known = {(c.table.__tablename__, c.cipher) for c in rotation.vaulted_columns()}
    binary = {
        (table.name, col.name)
        for table in Base.metadata.sorted_tables
        for col in table.columns
        if isinstance(col.type, LargeBinary)
    }
    assert binary == known


def test_every_table_keyed_by_a_blind_index_follows_the_rotation() -> None:
    """A look-up table left on the old key would stop finding duplicates after it."""
    cols = rotation.vaulted_columns()
    index_names = {c.index for c in cols if c.index}
    followed = {c.table.__tablename__ for c in cols} | {
        c.lookup.table.__tablename__ for c in cols if c.lookup
    }
    keyed = {
        table.name
        for table in Base.metadata.sorted_tables
        if any(col.name in index_names for col in table.primary_key.columns)
    }
    assert "bank_account_index" in keyed
    assert keyed <= followed


def test_bank_links_and_webhook_secrets_survive_a_rotation(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    from standardwebhooks import Webhook

    from qinqing.banks.delivery import deliver_webhooks
    from qinqing.banks.models import BankAccountIndex
    from qinqing.banks.rules import mask_account
    from qinqing.banks.service import ACCOUNT_KIND
    from support.banks import API, add_bank, card_number, link_customer, receiver
    from support.family import new_person

    clock.set(datetime.now(UTC))  # the receiver checks signature times against real time
    with receiver() as rec:
        bank_a, secret = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        bank_b, _ = add_bank(rt, client, "BANKB")
        person = new_person(rt, name="钱多多", account=False)
        other = new_person(rt, name="孙一", account=False)
        kept, ended = card_number(1), card_number(2)
        link = link_customer(client, bank_a, person.id_number, person.name, kept)
        assert link.status_code == 202, link.text
        gone = link_customer(client, bank_a, person.id_number, person.name, ended).json()
        r = client.delete(f"{API}/bank-links/{gone['id']}", headers=bank_a.headers)
        assert r.status_code == 200, r.text
        masked = link.json()["account_number_masked"]
        assert masked == mask_account(kept)

        counts = rotation.rotate(
            rt.db, Vault(parse_key(TEST_KEY)), Vault(parse_key(OTHER_KEY)), clock.now, batch=1
        )
        # two account numbers and the two ID numbers the bank named
        assert counts["bank_links"] == 4 and counts["bank_webhook_endpoints"] == 1

        rt2 = build_runtime(_with_key(rt.settings, OTHER_KEY), clock=clock, migrate=False)
        try:
            with rt2.db.unit_of_work() as s:
                looked_up = s.execute(select(BankAccountIndex.account_index)).scalars().all()
            assert looked_up == [rt2.vault.index(ACCOUNT_KIND, kept)]
            with AppClient(create_app(rt2)) as c2:
                # Still linked: the same account is a duplicate, for any customer, any bank.
                for bank, who in ((bank_a, person), (bank_b, other)):
                    r = link_customer(c2, bank, who.id_number, who.name, kept)
                    assert r.status_code == 409, r.text
                    assert r.json()["code"] == "BANK_ACCOUNT_ALREADY_LINKED"
                listed = c2.get(f"{API}/bank-links", headers=bank_a.headers).json()["items"]
                shown = {i["id"]: i["account_number_masked"] for i in listed}
                assert shown[link.json()["id"]] == masked
                assert shown[gone["id"]] == mask_account(ended)
                # The ended account is free; unlinking the kept one frees it too.
                r = link_customer(c2, bank_b, other.id_number, other.name, ended)
                assert r.status_code == 202, r.text
                r = c2.delete(f"{API}/bank-links/{link.json()['id']}", headers=bank_a.headers)
                assert r.status_code == 200, r.text
                r = link_customer(c2, bank_b, other.id_number, other.name, kept)
                assert r.status_code == 202, r.text
            # Events written before and after the rotation are signed with the same secret.
            assert deliver_webhooks(rt2, clock.now(), 100) == len(rec.received) == 4
        finally:
            rt2.db.dispose()
    assert secret is not None
    types = [Webhook(secret).verify(raw, headers)["type"] for headers, raw in rec.received]
    # Bank A's own events (bank B has no endpoint): two links, two ends.
    assert types == ["bank_link.created", "bank_link.created", "bank_link.ended", "bank_link.ended"]


def test_readyz_fails_for_a_process_on_another_key(rt: Runtime) -> None:
    """What the audit saw: another key, and /readyz still said 200."""
    wrong = Runtime(
        settings=rt.settings,
        db=rt.db,
        vault=Vault(parse_key(OTHER_KEY)),
        policies=rt.policies,
        clock=rt.clock,
    )
    with AppClient(create_app(wrong)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and "key check failed" in r.json()["secret_key"]
    assert OTHER_KEY not in r.text


def _as_before_keys(rt: Runtime, *, break_entry: int | None = None) -> None:
    """Turn the database back into what an older version left: no key check, an
    unkeyed SHA-256 audit chain and an answer stored in clear."""
    import hashlib

    from sqlalchemy import delete, update

    from qinqing.audit.models import AuditEntry, AuditHead
    from qinqing.audit.service import _canonical, _fields
    from qinqing.http.idempotency_models import IdempotencyKey

    with rt.db.unit_of_work() as s:
        s.execute(delete(keys.VaultKey))
        prev = "0" * 64
        rows = s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        for e in rows:
            e.prev_hash = prev
            e.hash = hashlib.sha256(_canonical(prev, e.seq, _fields(e))).hexdigest()
            prev = e.hash
            if e.seq == break_entry:
                e.reason = "edited afterwards"
        s.execute(update(AuditHead).values(seq=len(rows), hash=prev, mac=None))
        s.add(
            IdempotencyKey(
                caller="person:x",
                key="old",
                operation="POST /x",
                request_hash="-",
                status_code=200,
                response={"body": {"id_number": "150602198001010023"}},
                created_at=rt.clock.now(),
            )
        )


def test_first_start_after_the_upgrade_keys_the_chain_and_seals_answers(
    rt: Runtime, client: TestClient
) -> None:
    from qinqing.http.idempotency_models import IdempotencyKey

    _populate(rt, client)
    _as_before_keys(rt)
    again = build_runtime(rt.settings, migrate=False)
    try:
        with again.db.unit_of_work() as s:
            assert verify(s).status == "intact" and verify(s).checked >= 1
            old = s.execute(select(IdempotencyKey).where(IdempotencyKey.key == "old")).scalar_one()
            assert set(old.response) == {"sealed"}
            assert idempotency.open_answer(again.vault, old.caller, old.key, old.response) == {
                "id_number": "150602198001010023"
            }
    finally:
        again.db.dispose()


def test_an_altered_unkeyed_chain_is_not_laundered(rt: Runtime, client: TestClient) -> None:
    _populate(rt, client)
    _as_before_keys(rt, break_entry=1)
    again = build_runtime(rt.settings, migrate=False)  # still starts: payments go on
    try:
        with again.db.unit_of_work() as s:
            result = verify(s)
        assert not result.ok and result.first_bad_seq == 1
    finally:
        again.db.dispose()


def test_concurrent_first_starts_agree(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """serve --workers N starts N processes at once on a database never keyed."""
    import logging
    from concurrent.futures import ThreadPoolExecutor

    _populate(rt, client)
    _as_before_keys(rt)
    caplog.set_level(logging.WARNING, logger="qinqing.keys")

    def start(_: int) -> int:
        other = build_runtime(rt.settings, migrate=False)
        other.db.dispose()
        return other.vault.version

    caplog.clear()
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(start, range(3))) == [1, 1, 1]
    # No start saw another's key as a conflict or a rotation to repair.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with rt.db.unit_of_work() as s:
        assert verify(s).status == "intact"
        assert len(s.execute(select(keys.VaultKey)).all()) == 1
