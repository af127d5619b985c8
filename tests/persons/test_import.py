"""`persons import` (SPEC §3, §5): validation, refusals, idempotence, PII at rest, CLI."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from typer.testing import CliRunner

from qinqing.audit.actor import Actor
from qinqing.audit.models import AuditEntry
from qinqing.audit.service import verify
from qinqing.entrypoints.cli import app as cli_app
from qinqing.kit.db import Base
from qinqing.kit.errors import DomainError
from qinqing.persons import importer
from qinqing.persons.import_rows import Refusal
from qinqing.persons.importer import ImportReport, import_csv
from qinqing.persons.models import Person
from qinqing.persons.service import ID_KIND, PHONE_KIND
from qinqing.runtime import Runtime
from support.databases import TEST_KEY
from support.factories import (
    id_number,
    make_id_number_ending_x,
    person_row,
    persons_csv_text,
    with_wrong_check_digit,
    write_persons_csv,
)

OPERATOR = Actor("operator", "pytest", "admin")

A = id_number("150602", date(1980, 1, 1), seq=1, sex="F")
B = id_number("440106", date(1955, 7, 9), seq=2, sex="M")
C = id_number("110103", date(2012, 6, 1), seq=3, sex="M")  # 崇文区, abolished 2010
D = make_id_number_ending_x("500103", date(1999, 12, 31))
PHONE_A = "13800138000"
PHONE_C = "15912345678"
BAD_PHONE = "12345678901"


def _mixed_rows() -> list[list[str]]:
    """Line 2.. of a file with valid rows and one of every refusal (blank line 19)."""
    return [
        person_row(A, "张三", "150600", "employee", "active", PHONE_A),  # 2 taken
        person_row(B, "李四", "440100", "resident", "arrears", ""),  # 3 taken
        person_row(with_wrong_check_digit(id_number(seq=4))),  # 4
        person_row(id_number(seq=5)[:10] + "0230" + "0000"),  # 5 length ok, date bad
        person_row(id_number(born=date(2027, 1, 1), seq=6)),  # 6 future
        person_row(id_number(seq=7)[:17]),  # 7 too short
        person_row("15060219800101O02X"),  # 8 letters
        person_row(id_number("999999", seq=9)),  # 9 unknown area
        person_row(id_number(seq=10), name="  "),  # 10 empty name
        person_row(id_number(seq=11), name="张\x07三"),  # 11 control character
        person_row(id_number(seq=12), region_code="999999"),  # 12
        person_row(id_number(seq=13), scheme="retired"),  # 13
        person_row(id_number(seq=14), status="dead"),  # 14
        person_row(id_number(seq=15), phone=BAD_PHONE),  # 15
        person_row(id_number(seq=16))[:5],  # 16 five fields
        person_row(A, "张三", "150600", "employee", "active", ""),  # 17 duplicate of 2
        person_row(C, "王五", "110000", "flexible", "suspended", PHONE_C),  # 18 taken
        [],  # 19 blank line: skipped
        person_row(D, "阿依古丽·买买提", "500000", "employee", "terminated", ""),  # 20 taken
        person_row(id_number(seq=21), name="赵" * 65),  # 21 too long
    ]


EXPECTED_REFUSALS = [
    (4, "ID_NUMBER_CHECK_DIGIT"),
    (5, "ID_NUMBER_BIRTH_DATE"),
    (6, "ID_NUMBER_BIRTH_DATE"),
    (7, "ID_NUMBER_LENGTH"),
    (8, "ID_NUMBER_FORMAT"),
    (9, "ID_NUMBER_AREA_CODE"),
    (10, "NAME_INVALID"),
    (11, "NAME_INVALID"),
    (12, "REGION_UNKNOWN"),
    (13, "SCHEME_INVALID"),
    (14, "STATUS_INVALID"),
    (15, "PHONE_INVALID"),
    (16, "COLUMNS_INVALID"),
    (17, "DUPLICATE_IN_FILE"),
    (21, "NAME_INVALID"),
]


def _fix_line_5(rows: list[list[str]]) -> list[list[str]]:
    """Line 5 needs a correct check digit so that the date is what is refused."""
    from qinqing.identity.ric import with_check_digit

    rows[3][0] = with_check_digit("15060219800230012")
    return rows


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    return write_persons_csv(tmp_path / "persons.csv", _fix_line_5(_mixed_rows()))


def _codes(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.line, r.code) for r in report.refused]


def _stored(rt: Runtime) -> dict[str, Person]:
    with rt.db.unit_of_work() as s:
        people = s.execute(select(Person)).scalars().all()
        return {rt.vault.decrypt(ID_KIND, p.id_number_cipher): p for p in people}


def _imports(rt: Runtime) -> list[AuditEntry]:
    with rt.db.unit_of_work() as s:
        return list(
            s.execute(select(AuditEntry).where(AuditEntry.action == "persons.import"))
            .scalars()
            .all()
        )


def test_valid_rows_are_taken_and_every_kind_of_refusal_is_reported(
    rt: Runtime, mixed_csv: Path
) -> None:
    report = import_csv(rt, mixed_csv, actor=OPERATOR)

    assert report.taken == 4
    assert _codes(report) == EXPECTED_REFUSALS
    assert report.rows == 4 + len(EXPECTED_REFUSALS)
    dup = next(r for r in report.refused if r.code == "DUPLICATE_IN_FILE")
    assert dup.reason == "the same ID number is on line 2"
    for refusal in report.refused:
        assert refusal.reason and refusal.reason.isascii()

    stored = _stored(rt)
    assert set(stored) == {A, B, C, D}
    a, b, c, d = stored[A], stored[B], stored[C], stored[D]
    assert (a.name, a.region_code, a.scheme, a.status) == ("张三", "150600", "employee", "active")
    assert (a.birth_date, a.sex) == (date(1980, 1, 1), "F")
    assert a.phone_cipher is not None
    assert rt.vault.decrypt(PHONE_KIND, a.phone_cipher) == PHONE_A
    assert a.phone_index == rt.vault.index(PHONE_KIND, PHONE_A)
    assert a.id_number_index == rt.vault.index(ID_KIND, A)
    assert a.created_at == a.updated_at == rt.clock.now()
    assert (b.scheme, b.status, b.sex, b.phone_cipher, b.phone_index) == (
        "resident",
        "arrears",
        "M",
        None,
        None,
    )
    assert (c.region_code, c.birth_date, c.status) == ("110000", date(2012, 6, 1), "suspended")
    assert (d.name, d.status) == ("阿依古丽·买买提", "terminated")
    assert D.endswith("X")


def test_one_audit_entry_with_counts_and_file_name_only(rt: Runtime, mixed_csv: Path) -> None:
    import_csv(rt, mixed_csv, actor=OPERATOR)
    (entry,) = _imports(rt)
    assert (entry.actor_kind, entry.actor_id, entry.channel) == ("operator", "pytest", "admin")
    assert entry.subject_kind == "import"
    assert entry.details["file"] == "persons.csv"
    assert entry.details["taken"] == 4
    assert entry.details["refused"] == len(EXPECTED_REFUSALS)
    assert entry.details["rows"] == 4 + len(EXPECTED_REFUSALS)
    assert entry.details["refused_by_code"] == {
        "COLUMNS_INVALID": 1,
        "DUPLICATE_IN_FILE": 1,
        "ID_NUMBER_AREA_CODE": 1,
        "ID_NUMBER_BIRTH_DATE": 2,
        "ID_NUMBER_CHECK_DIGIT": 1,
        "ID_NUMBER_FORMAT": 1,
        "ID_NUMBER_LENGTH": 1,
        "NAME_INVALID": 3,
        "PHONE_INVALID": 1,
        "REGION_UNKNOWN": 1,
        "SCHEME_INVALID": 1,
        "STATUS_INVALID": 1,
    }
    text = json.dumps(entry.details, ensure_ascii=False)
    for secret in (A, B, C, D, PHONE_A, PHONE_C, "张三"):
        assert secret not in text
    with rt.db.unit_of_work() as s:
        assert verify(s).ok


def test_reasons_never_contain_id_numbers_or_phones(rt: Runtime, mixed_csv: Path) -> None:
    rows = _fix_line_5(_mixed_rows())
    report = import_csv(rt, mixed_csv, actor=OPERATOR)
    values = {v for row in rows for v in row[:1] + row[5:] if v}
    values |= {v[:17] for v in values if len(v) >= 17}
    for refusal in report.refused:
        for value in values:
            assert value not in refusal.reason


def test_importing_the_same_file_again_creates_and_changes_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    rows = [person_row(n, phone=PHONE_A if n == A else "") for n in (A, B, C, D)]
    path = write_persons_csv(tmp_path / "again.csv", rows)
    assert import_csv(rt, path, actor=OPERATOR) == ImportReport(taken=4, refused=[], created=4)
    before = {n: (p.updated_at, p.phone_cipher) for n, p in _stored(rt).items()}

    again = import_csv(rt, path, actor=OPERATOR)
    assert again == ImportReport(taken=4, refused=[], changed=[], created=0)
    assert {n: (p.updated_at, p.phone_cipher) for n, p in _stored(rt).items()} == before
    assert len(_imports(rt)) == 2


def test_existing_and_new_rows_in_one_file_across_chunks(rt: Runtime, tmp_path: Path) -> None:
    first = write_persons_csv(tmp_path / "first.csv", [person_row(B), person_row(D)])
    import_csv(rt, first, actor=OPERATOR)
    numbers = [id_number(seq=i) for i in range(30)] + [B, D]
    path = write_persons_csv(tmp_path / "second.csv", [person_row(n) for n in numbers])
    progress: list[tuple[int, int]] = []

    report = import_csv(
        rt, path, actor=OPERATOR, chunk_rows=7, on_progress=lambda d, t: progress.append((d, t))
    )

    assert (report.taken, report.created, report.refused, report.changed) == (32, 30, [], [])
    assert len(_stored(rt)) == 32
    size = path.stat().st_size
    assert len(progress) >= 5
    assert all(total == size for _, total in progress)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert progress[-1] == (size, size)


def test_the_cluster_writer_on_plain_postgresql(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer chosen on a Citus coordinator (no staging table) takes new rows and
    reports existing ones like the staging writer; here on any PostgreSQL."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has its own writer; the cluster writer is PostgreSQL's")
    monkeypatch.setattr(importer, "citus_version", lambda _conn: "13.2")
    first = write_persons_csv(tmp_path / "first.csv", [person_row(B), person_row(D)])
    import_csv(rt, first, actor=OPERATOR)
    numbers = [id_number(seq=i) for i in range(10)] + [B, D]
    path = write_persons_csv(tmp_path / "second.csv", [person_row(n) for n in numbers])

    report = import_csv(rt, path, actor=OPERATOR, chunk_rows=4)

    assert (report.taken, report.created, report.refused, report.changed) == (12, 10, [], [])
    assert len(_stored(rt)) == 12
    # A known person's change is found on this path too.
    moved = write_persons_csv(tmp_path / "moved.csv", [person_row(D, region_code="500000")])
    report = import_csv(rt, moved, actor=OPERATOR)
    assert [(c.line, dict(c.fields)) for c in report.changed] == [
        (2, {"region_code": ("150600", "500000")})
    ]
    assert _stored(rt)[D].region_code == "500000"


def test_a_phone_added_or_removed_shows_as_masked_or_null(rt: Runtime, tmp_path: Path) -> None:
    first = write_persons_csv(tmp_path / "first.csv", [person_row(A, phone=PHONE_A), person_row(B)])
    import_csv(rt, first, actor=OPERATOR)
    swapped = write_persons_csv(
        tmp_path / "swapped.csv", [person_row(A), person_row(B, phone=PHONE_C)]
    )

    report = import_csv(rt, swapped, actor=OPERATOR)

    assert report.as_dict()["changed"] == [
        {"line": 2, "fields": {"phone": ["138****8000", None]}},
        {"line": 3, "fields": {"phone": [None, "159****5678"]}},
    ]
    stored = _stored(rt)
    assert (stored[A].phone_index, stored[A].phone_cipher) == (None, None)
    assert stored[B].phone_index == rt.vault.index(PHONE_KIND, PHONE_C)


def test_duplicates_within_the_file(rt: Runtime, tmp_path: Path) -> None:
    rows = [
        person_row(A, name="张三"),
        person_row(B),
        person_row(A.lower() if A.endswith("X") else f" {A} ", name="张三"),
        person_row(D.lower(), name="某人"),  # x in lower case: the same number as D
        person_row(D),
    ]
    report = import_csv(rt, write_persons_csv(tmp_path / "dup.csv", rows), actor=OPERATOR)
    assert report.taken == 3
    assert _codes(report) == [(4, "DUPLICATE_IN_FILE"), (6, "DUPLICATE_IN_FILE")]
    assert report.refused[1].reason == "the same ID number is on line 5"
    assert _stored(rt)[D].name == "某人"


def test_a_refused_row_does_not_hide_a_later_valid_one(rt: Runtime, tmp_path: Path) -> None:
    rows = [person_row(A, scheme="unknown"), person_row(A)]
    report = import_csv(rt, write_persons_csv(tmp_path / "later.csv", rows), actor=OPERATOR)
    assert (report.taken, _codes(report)) == (1, [(2, "SCHEME_INVALID")])


@pytest.mark.parametrize(
    "header",
    [
        ["id_number", "name", "region_code", "scheme", "status"],
        ["name", "id_number", "region_code", "scheme", "status", "phone"],
        ["id", "name", "region", "scheme", "status", "phone"],
        ["id_number", "name", "region_code", "scheme", "status", "phone", "extra"],
        None,  # no header at all: the first data row is not a header
    ],
)
def test_a_wrong_or_missing_header_refuses_the_whole_file(
    rt: Runtime, tmp_path: Path, header: list[str] | None
) -> None:
    path = write_persons_csv(tmp_path / "bad.csv", [person_row(A), person_row(B)], header=header)
    with pytest.raises(DomainError) as info:
        import_csv(rt, path, actor=OPERATOR)
    assert info.value.code == "CSV_HEADER_INVALID"
    assert info.value.status == 422
    assert info.value.params["expected"] == "id_number,name,region_code,scheme,status,phone"
    assert A not in repr(info.value.params)
    assert _stored(rt) == {}
    assert _imports(rt) == []


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_an_empty_file_has_no_header(rt: Runtime, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(DomainError, match="CSV_HEADER_INVALID"):
        import_csv(rt, path, actor=OPERATOR)


def test_header_only_takes_nothing(rt: Runtime, tmp_path: Path) -> None:
    path = write_persons_csv(tmp_path / "header.csv", [])
    assert import_csv(rt, path, actor=OPERATOR) == ImportReport(taken=0, refused=[], created=0)
    assert len(_imports(rt)) == 1


def test_bom_and_crlf_are_accepted(rt: Runtime, tmp_path: Path) -> None:
    path = write_persons_csv(
        tmp_path / "excel.csv", [person_row(A), person_row(B)], bom=True, line_terminator="\r\n"
    )
    assert import_csv(rt, path, actor=OPERATOR) == ImportReport(taken=2, refused=[], created=2)
    assert set(_stored(rt)) == {A, B}


def test_line_numbers_are_physical_lines(rt: Runtime, tmp_path: Path) -> None:
    # A quoted name with a line break spans lines 3-4; the next record is on line 5.
    text = persons_csv_text(
        [person_row(A), person_row(B, name="李\n四"), person_row(C, scheme="x")]
    )
    path = tmp_path / "multiline.csv"
    path.write_text(text, encoding="utf-8")
    report = import_csv(rt, path, actor=OPERATOR)
    assert _codes(report) == [(3, "NAME_INVALID"), (5, "SCHEME_INVALID")]


def test_a_line_that_is_not_utf8_is_refused_alone(rt: Runtime, tmp_path: Path) -> None:
    good = persons_csv_text([person_row(A)]).encode()
    bad = ",".join([B, "李四", "150600", "employee", "active", ""]).encode("gbk") + b"\n"
    last = persons_csv_text([person_row(C)], header=None).encode()
    path = tmp_path / "gbk.csv"
    path.write_bytes(good + bad + last)
    report = import_csv(rt, path, actor=OPERATOR)
    assert (report.taken, _codes(report)) == (2, [(3, "ENCODING_INVALID")])


def test_malformed_csv_is_refused_by_line(rt: Runtime, tmp_path: Path) -> None:
    text = persons_csv_text([person_row(A)]) + f'{B},"李"四,150600,employee,active,\n'
    text += persons_csv_text([person_row(C)], header=None)
    path = tmp_path / "quotes.csv"
    path.write_text(text, encoding="utf-8")
    report = import_csv(rt, path, actor=OPERATOR)
    assert (report.taken, _codes(report)) == (2, [(3, "CSV_MALFORMED")])


def test_values_are_trimmed_and_case_folded(rt: Runtime, tmp_path: Path) -> None:
    rows = [[f" {A} ", " 张三 ", " 150600 ", " Employee", "ACTIVE ", " +86 138-0013-8000 "]]
    report = import_csv(rt, write_persons_csv(tmp_path / "trim.csv", rows), actor=OPERATOR)
    assert report == ImportReport(taken=1, refused=[], created=1)
    person = _stored(rt)[A]
    assert (person.name, person.region_code, person.scheme, person.status) == (
        "张三",
        "150600",
        "employee",
        "active",
    )
    assert person.phone_cipher is not None
    assert rt.vault.decrypt(PHONE_KIND, person.phone_cipher) == PHONE_A


# --- PII at rest and in logs -----------------------------------------------------------


def _dump_everything(rt: Runtime) -> tuple[str, bytes]:
    """Every row of every table, as text and as the concatenation of binary values."""
    reflected = MetaData()
    reflected.reflect(bind=rt.db.engine)
    assert set(Base.metadata.tables) <= set(reflected.tables)
    texts: list[str] = []
    blobs: list[bytes] = []
    with rt.db.engine.connect() as conn:
        for table in reflected.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        blobs.append(bytes(value))
                    texts.append(str(value))
    return "\n".join(texts), b"\n".join(blobs)


def test_no_id_number_or_phone_at_rest(
    rt: Runtime, mixed_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    report = import_csv(rt, mixed_csv, actor=OPERATOR)
    assert report.taken == 4

    text, blobs = _dump_everything(rt)
    assert "persons.import" in text  # the dump really contains the tables
    rows = _fix_line_5(_mixed_rows())
    secrets = {v for row in rows for v in row[:1] + row[5:] if len(v) >= 11}
    assert {A, B, C, D, PHONE_A, PHONE_C} <= secrets
    for secret in secrets:
        assert secret not in text
        assert secret.encode() not in blobs
    if rt.db.is_sqlite:
        db_file = Path(rt.db.engine.url.database or "")
        raw = b"".join(
            p.read_bytes() for p in db_file.parent.glob(db_file.name + "*") if p.is_file()
        )
        for secret in secrets:
            assert secret.encode() not in raw

    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "persons import" in logged
    for secret in secrets:
        assert secret not in logged


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def cli_env(rt: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("QINQING_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("QINQING_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("QINQING_ENV", "test")
    monkeypatch.setenv("QINQING_DATA_DIR", str(tmp_path / "cli-data"))
    yield


def test_cli_json_output(rt: Runtime, cli_env: None, mixed_csv: Path) -> None:
    result = CliRunner().invoke(cli_app, ["persons", "import", str(mixed_csv), "--json"])
    assert result.exit_code == 2, result.output  # some rows refused, the others taken
    out = json.loads(result.stdout)
    assert set(out) == {"taken", "refused", "changed"}
    assert out["changed"] == []
    assert out["taken"] == 4
    assert [(r["line"], r["code"]) for r in out["refused"]] == EXPECTED_REFUSALS
    assert all(set(r) == {"line", "code", "reason"} for r in out["refused"])
    assert all(isinstance(r["reason"], str) for r in out["refused"])
    for secret in (A, B, C, D, PHONE_A, PHONE_C, BAD_PHONE):
        assert secret not in result.stdout
    assert set(_stored(rt)) == {A, B, C, D}  # the CLI's runtime used the same vault key


def test_cli_summary_and_table(rt: Runtime, cli_env: None, mixed_csv: Path) -> None:
    result = CliRunner().invoke(cli_app, ["persons", "import", str(mixed_csv)])
    assert result.exit_code == 2, result.output
    assert f"taken 4, refused {len(EXPECTED_REFUSALS)}" in result.stdout
    assert "ID_NUMBER_CHECK_DIGIT" in result.stdout
    assert "DUPLICATE_IN_FILE" in result.stdout


def test_cli_table_is_capped(rt: Runtime, cli_env: None, tmp_path: Path) -> None:
    rows = [person_row(id_number(seq=i), scheme="nope") for i in range(55)]
    path = write_persons_csv(tmp_path / "many.csv", rows)
    result = CliRunner().invoke(cli_app, ["persons", "import", str(path)], terminal_width=200)
    assert result.exit_code == 1, result.output  # every row refused: nothing imported
    assert "taken 0, refused 55" in result.stdout
    assert "and 5 more refused rows" in result.stdout
    assert result.stdout.count("SCHEME_INVALID") == 50


def test_cli_missing_file(cli_env: None, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["persons", "import", str(tmp_path / "nope.csv"), "--json"]
    )
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    assert result.stdout == ""


def test_cli_bad_header(rt: Runtime, cli_env: None, tmp_path: Path) -> None:
    path = write_persons_csv(tmp_path / "bad.csv", [person_row(A)], header=None)
    result = CliRunner().invoke(cli_app, ["persons", "import", str(path), "--json"])
    assert result.exit_code == 1
    assert "CSV_HEADER_INVALID" in result.stderr
    assert "id_number,name,region_code,scheme,status,phone" in result.stderr
    assert A not in result.stderr + result.stdout
    assert _stored(rt) == {}


def test_refusal_is_a_plain_value() -> None:
    refusal = Refusal(7, "ID_NUMBER_CHECK_DIGIT", "the ID number's check digit is wrong")
    assert refusal.as_dict() == {
        "line": 7,
        "code": "ID_NUMBER_CHECK_DIGIT",
        "reason": "the ID number's check digit is wrong",
    }


def test_cli_exit_status_is_0_when_every_row_is_taken(
    rt: Runtime, cli_env: None, tmp_path: Path
) -> None:
    path = write_persons_csv(tmp_path / "good.csv", [person_row(A), person_row(B)])
    result = CliRunner().invoke(cli_app, ["persons", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"taken": 2, "refused": [], "changed": []}


def test_cli_a_directory_is_named_as_one(cli_env: None, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["persons", "import", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert "is a directory, not a CSV file" in result.stderr
    assert "no such file" not in result.stderr


def test_a_row_over_the_size_limit_says_so(rt: Runtime, tmp_path: Path) -> None:
    text = persons_csv_text([person_row(A)])
    text += f"{B},{'王' * 700_000},150600,employee,active,\n"  # about 2 MB on one line
    text += persons_csv_text([person_row(C)], header=None)
    path = tmp_path / "long.csv"
    path.write_text(text, encoding="utf-8")
    report = import_csv(rt, path, actor=OPERATOR)
    assert (report.taken, _codes(report)) == (2, [(3, "ROW_TOO_LONG")])
    assert "4096 bytes" in report.refused[0].reason
    assert set(_stored(rt)) == {A, C}


def test_a_quoted_field_running_past_the_limit_says_so(rt: Runtime, tmp_path: Path) -> None:
    lines = "\n".join("x" * 1000 for _ in range(200))  # each line short, the field huge
    text = persons_csv_text([person_row(A)]) + f'{B},"{lines}",150600,employee,active,\n'
    path = tmp_path / "field.csv"
    path.write_text(text, encoding="utf-8")
    report = import_csv(rt, path, actor=OPERATOR)
    assert report.taken == 1
    assert _codes(report)[0] == (3, "ROW_TOO_LONG")


def _gbk_file(path: Path) -> Path:
    rows = [person_row(A, name="张三"), person_row(B, name="李四")]
    path.write_bytes(persons_csv_text(rows).encode("gbk"))
    return path


def test_a_gbk_file_is_refused_whole_with_what_to_do(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(DomainError) as caught:
        import_csv(rt, _gbk_file(tmp_path / "excel.csv"), actor=OPERATOR)
    assert caught.value.code == "CSV_NOT_UTF8"
    assert _stored(rt) == {}


def test_a_gbk_file_imports_with_encoding_gbk(rt: Runtime, tmp_path: Path) -> None:
    report = import_csv(rt, _gbk_file(tmp_path / "excel.csv"), actor=OPERATOR, encoding="gbk")
    assert report == ImportReport(taken=2, refused=[], created=2)
    assert {p.name for p in _stored(rt).values()} == {"张三", "李四"}


def test_cli_gbk_file_without_and_with_encoding(rt: Runtime, cli_env: None, tmp_path: Path) -> None:
    path = _gbk_file(tmp_path / "excel.csv")
    refused = CliRunner().invoke(cli_app, ["persons", "import", str(path), "--json"])
    assert refused.exit_code == 1
    assert "CSV_NOT_UTF8" in refused.stderr
    assert "GBK" in refused.stderr and "--encoding gbk" in refused.stderr
    assert "CSV UTF-8" in refused.stderr
    assert refused.stderr.count("UTF-8") < 5  # one message, not one per row
    taken = CliRunner().invoke(
        cli_app, ["persons", "import", str(path), "--json", "--encoding", "GBK"]
    )
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.stdout)["taken"] == 2


def test_cli_refuses_an_unknown_encoding(cli_env: None, tmp_path: Path) -> None:
    path = write_persons_csv(tmp_path / "x.csv", [person_row(A)])
    result = CliRunner().invoke(cli_app, ["persons", "import", str(path), "--encoding", "latin-1"])
    assert result.exit_code == 1
    assert "use utf-8 or gbk" in result.stderr
