"""A re-import of known persons (SPEC §3, §5 ``persons import``), both databases: the
changes of status, scheme, region, phone and guardians are applied and reported per
line (``--json`` ``changed``), never with a phone or an ID number in clear; the same
file again changes nothing; refused rows change nothing; ``deceased`` is a status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from qinqing.audit.actor import Actor
from qinqing.audit.models import AuditEntry
from qinqing.audit.service import verify
from qinqing.entrypoints.cli import app as cli_app
from qinqing.persons.importer import import_csv
from qinqing.persons.models import Person
from qinqing.persons.service import ID_KIND, PHONE_KIND, guardians_of
from qinqing.runtime import Runtime
from support.databases import TEST_KEY
from support.factories import PERSONS_HEADER, id_number, person_row, write_persons_csv

A = id_number("150602", date(1980, 1, 1), seq=1, sex="F")
B = id_number("440106", date(1955, 7, 9), seq=2, sex="M")
CHILD = id_number("150602", date(2016, 3, 3), seq=3, sex="M")
G1 = id_number("150602", date(1984, 2, 2), seq=4, sex="F")
G2 = id_number("150602", date(1983, 5, 5), seq=5, sex="M")
PHONE_A, PHONE_A2 = "13800138000", "13912345678"
HEADER = (*PERSONS_HEADER, "guardians")
OPERATOR = Actor("operator", "pytest", "admin")


@pytest.fixture
def cli_env(rt: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("QINQING_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("QINQING_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("QINQING_ENV", "test")
    monkeypatch.setenv("QINQING_DATA_DIR", str(tmp_path / "cli-data"))
    yield


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["persons", "import", str(path), *args])
    return result.exit_code, result.stdout


def stored(rt: Runtime) -> dict[str, Person]:
    with rt.db.unit_of_work() as s:
        people = s.execute(select(Person)).scalars().all()
        s.expunge_all()
        return {rt.vault.decrypt(ID_KIND, p.id_number_cipher): p for p in people}


def guardians(rt: Runtime, number: str) -> set[str]:
    with rt.db.unit_of_work() as s:
        return guardians_of(s, stored(rt)[number].id)


def first_file(tmp_path: Path) -> Path:
    return write_persons_csv(
        tmp_path / "first.csv",
        [
            [*person_row(A, "张三", "150600", "employee", "active", PHONE_A), ""],
            [*person_row(B, "李四", "440100", "resident", "active", ""), ""],
            [*person_row(CHILD, "张小宝", "150600", "resident", "active", ""), G1],
        ],
        header=HEADER,
    )


def changed_file(tmp_path: Path) -> Path:
    """A moves to 440100 with a new phone; B leaves the resident scheme and falls into
    arrears; the child gets a second guardian."""
    return write_persons_csv(
        tmp_path / "changed.csv",
        [
            [*person_row(A, "张三", "440100", "employee", "active", PHONE_A2), ""],
            [*person_row(B, "李四", "440100", "flexible", "arrears", ""), ""],
            [*person_row(CHILD, "张小宝", "150600", "resident", "active", ""), f"{G1};{G2}"],
        ],
        header=HEADER,
    )


def test_a_reimport_applies_and_reports_each_change_then_none(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    code, _ = run(first_file(tmp_path), "--json")
    assert code == 0
    before = stored(rt)

    code, out = run(changed_file(tmp_path), "--json")

    assert code == 0, out
    assert json.loads(out) == {
        "taken": 3,
        "refused": [],
        "changed": [
            {
                "line": 2,
                "fields": {
                    "region_code": ["150600", "440100"],
                    "phone": ["138****8000", "139****5678"],
                },
            },
            {
                "line": 3,
                "fields": {"scheme": ["resident", "flexible"], "status": ["active", "arrears"]},
            },
            {"line": 4, "fields": {"guardians": [1, 2]}},
        ],
    }
    for secret in (A, B, CHILD, G1, G2, PHONE_A, PHONE_A2):
        assert secret not in out
    after = stored(rt)
    a, b = after[A], after[B]
    assert (a.region_code, a.scheme, a.status) == ("440100", "employee", "active")
    assert a.phone_cipher is not None
    assert rt.vault.decrypt(PHONE_KIND, a.phone_cipher) == PHONE_A2
    assert a.phone_index == rt.vault.index(PHONE_KIND, PHONE_A2)
    assert (b.region_code, b.scheme, b.status) == ("440100", "flexible", "arrears")
    assert guardians(rt, CHILD) == {rt.vault.index(ID_KIND, g) for g in (G1, G2)}
    assert a.updated_at > before[A].updated_at and a.created_at == before[A].created_at
    assert a.id == before[A].id and len(after) == 3

    # The same file again: nothing to report, nothing written.
    code, out = run(changed_file(tmp_path), "--json")
    assert (code, json.loads(out)) == (0, {"taken": 3, "refused": [], "changed": []})
    assert {n: (p.updated_at, p.phone_cipher) for n, p in stored(rt).items()} == {
        n: (p.updated_at, p.phone_cipher) for n, p in after.items()
    }


def test_each_change_is_audited_without_personal_numbers(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    run(first_file(tmp_path), "--json")
    run(changed_file(tmp_path), "--json")
    with rt.db.unit_of_work() as s:
        entries = (
            s.execute(select(AuditEntry).where(AuditEntry.action.like("persons.%"))).scalars().all()
        )
        rows = [(e.action, e.subject_id, e.details) for e in entries]
    people = stored(rt)
    changed = [
        (subject, d["line"], sorted(d["fields"]))
        for a, subject, d in rows
        if a == "persons.changed"
    ]
    assert changed == [
        (str(people[A].id), 2, ["phone", "region_code"]),
        (str(people[B].id), 3, ["scheme", "status"]),
        (str(people[CHILD].id), 4, ["guardians"]),
    ]
    last_import = [d for a, _, d in rows if a == "persons.import"][-1]
    assert (last_import["created"], last_import["changed"]) == (0, 3)
    assert last_import["changed_by_field"] == {
        "guardians": 1,
        "phone": 1,
        "region_code": 1,
        "scheme": 1,
        "status": 1,
    }
    text = json.dumps([d for *_, d in rows], ensure_ascii=False)
    for secret in (A, B, CHILD, G1, G2, PHONE_A, PHONE_A2):
        assert secret not in text
    with rt.db.unit_of_work() as s:
        assert verify(s).ok  # appended in one batch, chained as one by one


def test_the_summary_says_how_many_persons_changed(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    run(first_file(tmp_path))
    code, out = run(changed_file(tmp_path))
    assert code == 0, out
    assert "taken 3, refused 0: 0 new, 3 known persons changed" in out
    assert "region_code, phone" in out and "guardians" in out
    for secret in (A, B, CHILD, PHONE_A, PHONE_A2):
        assert secret not in out


def test_a_refused_row_of_a_known_person_changes_nothing_of_them(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    run(first_file(tmp_path), "--json")
    before = stored(rt)
    path = write_persons_csv(
        tmp_path / "bad.csv",
        [
            person_row(A, "张三", "440100", "employee", "dead", PHONE_A2),  # 2 status
            person_row(B, "李四", "999999", "resident", "terminated", ""),  # 3 region
            person_row(CHILD, "张小宝", "150600", "resident", "deceased", "12345"),  # 4 phone
        ],
    )

    code, out = run(path, "--json")

    assert code == 1, out  # nothing imported
    body = json.loads(out)
    assert body["taken"] == 0 and body["changed"] == []
    assert [(r["line"], r["code"]) for r in body["refused"]] == [
        (2, "STATUS_INVALID"),
        (3, "REGION_UNKNOWN"),
        (4, "PHONE_INVALID"),
    ]
    assert body["refused"][0]["reason"].startswith("the status must be one of")
    assert "deceased" in body["refused"][0]["reason"]
    after = stored(rt)
    for n in (A, B, CHILD):
        old, new = before[n], after[n]
        assert (new.region_code, new.scheme, new.status, new.phone_index, new.updated_at) == (
            old.region_code,
            old.scheme,
            old.status,
            old.phone_index,
            old.updated_at,
        )


def test_without_the_guardians_column_guardians_stay_and_deceased_is_a_status(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    run(first_file(tmp_path), "--json")
    new = id_number("500103", date(1940, 1, 1), seq=6, sex="M")
    path = write_persons_csv(
        tmp_path / "no-guardians.csv",
        [
            person_row(CHILD, "张小宝", "150600", "resident", "deceased", ""),
            person_row(new, "周八", "500000", "employee", "deceased", ""),
        ],
    )
    code, out = run(path, "--json")
    assert code == 0, out
    assert json.loads(out)["changed"] == [{"line": 2, "fields": {"status": ["active", "deceased"]}}]
    assert guardians(rt, CHILD) == {rt.vault.index(ID_KIND, G1)}
    assert stored(rt)[new].status == "deceased"


def test_more_changes_than_a_batch_are_all_applied(rt: Runtime, tmp_path: Path) -> None:
    """1,500 changed persons in chunks of 700: across the batches of 1,000 the change
    step locks, reads and updates in, every change applied once."""
    numbers = [
        id_number("150602", date(1970, 1, 1) + timedelta(days=i // 400), seq=i % 400, sex="F")
        for i in range(1500)
    ]
    first = write_persons_csv(tmp_path / "many.csv", [person_row(n) for n in numbers])
    assert import_csv(rt, first, actor=OPERATOR).created == 1500
    changed = write_persons_csv(
        tmp_path / "many-changed.csv",
        [person_row(n, scheme="resident", status="arrears") for n in numbers],
    )

    report = import_csv(rt, changed, actor=OPERATOR, chunk_rows=700)

    assert len(report.changed) == 1500
    assert [c.line for c in report.changed] == list(range(2, 1502))
    assert {(p.scheme, p.status) for p in stored(rt).values()} == {("resident", "arrears")}
    assert import_csv(rt, changed, actor=OPERATOR).changed == []
