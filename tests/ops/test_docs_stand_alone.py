"""The repository stands alone: README, docs and source never point outside it (a
clone has no product contract beside it), and every relative link in the README and
docs leads to a file, and a heading, that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|shared/SPEC|SPEC\.md|SPEC §|SPEC's|ARCHITECTURE\.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
TEXT_SUFFIXES = {".md", ".py", ".toml", ".ini", ".mako", ".txt", ".html", ".css", ".js", ".po"}


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _texts() -> list[Path]:
    sources = [
        p for p in sorted((ROOT / "src").rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES
    ]
    return _documents() + sources


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped,
    spaces to hyphens (letters of any script are kept)."""
    text = re.sub(r"`|\*|_(?=\W)|(?<=\W)_", "", heading.lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_nothing_refers_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _texts()
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "references outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text("utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path_part, _, anchor = target.partition("#")
        file = (doc.parent / path_part).resolve() if path_part else doc
        if not file.exists() or ROOT not in file.parents:
            broken.append(target)
            continue
        if anchor and file.suffix == ".md":
            anchors = {slug(h) for h in HEADING.findall(file.read_text("utf-8"))}
            if anchor not in anchors:
                broken.append(target)
    assert not broken, f"broken links in {doc.relative_to(ROOT)}: {broken}"


def test_the_guide_documents_every_message_code() -> None:
    from qinqing.kit import i18n

    guide = (ROOT / "docs" / "guide.md").read_text("utf-8")
    missing = sorted(
        code for code in i18n.catalog("en") if "__" not in code and f"`{code}`" not in guide
    )
    assert not missing, f"codes missing from docs/guide.md: {missing}"


def test_scaling_doc_places_every_table_as_the_map_does() -> None:
    """docs/scaling.md names every table of the distribution map, each under its
    placement (a new table must be documented where it lives)."""
    from qinqing.schema.distribution import LOCAL, REFERENCE, TABLES, Distributed

    text = (ROOT / "docs" / "scaling.md").read_text("utf-8")
    for name, placement in TABLES.items():
        if name == "alembic_version":
            continue
        assert f"`{name}`" in text, name
        if isinstance(placement, Distributed):
            assert f"| `{name}` | `{placement.column}` |" in text, name
        elif placement is REFERENCE:
            ref = text.split("**Reference tables**", 1)[1].split("**On the coordinator", 1)[0]
            assert f"`{name}`" in ref, name
        else:
            assert placement is LOCAL
            local = text.split("**On the coordinator only**", 1)[1].split("##", 1)[0]
            assert f"`{name}`" in local, name


PY_PATH = re.compile(r"`([A-Za-z_./-]*[a-z_]+\.py)(?::[^`]*)?`")


def _repository_files() -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py") if ".venv" not in p.parts]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_file_a_doc_names_exists(doc: Path) -> None:
    """A newcomer follows a doc's `path/file.py` to the code: each names a file that
    exists (a path is matched at its end, so `family/rules.py` and `rules.py` inside
    a section on one package both count; a moved file leaves no dead name behind)."""
    files = _repository_files()
    named = set(PY_PATH.findall(doc.read_text("utf-8")))
    stale = sorted(
        name for name in named if not any(f == name or f.endswith("/" + name) for f in files)
    )
    assert not stale, f"{doc.relative_to(ROOT)} names files that do not exist: {stale}"


def test_the_guide_says_truly_where_each_code_is_raised() -> None:
    """The guide's code tables give, per code, the modules (under src/qinqing/) that
    raise it: each exists and names the code."""
    guide = (ROOT / "docs" / "guide.md").read_text("utf-8")
    table = guide[guide.index("## Codes: every error and blocker") :]
    wrong = []
    for line in table.splitlines():
        row = re.match(r"\| `([A-Z0-9_]+)` \|", line)
        if not row:
            continue
        code = row.group(1)
        for name in re.findall(r"`([^`]+\.py)`", line.rsplit(" | ", 1)[-1]):
            path = ROOT / "src" / "qinqing" / name
            if not path.exists() or not re.search(rf"\b{code}\b", path.read_text("utf-8")):
                wrong.append(f"{code}: {name}")
    assert not wrong, f"docs/guide.md says these modules raise codes they do not: {wrong}"
