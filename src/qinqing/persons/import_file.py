"""Reading a persons CSV file: the header, the encoding (UTF-8 with an optional BOM,
or GBK when asked for; a file that should be UTF-8 but reads as GBK is refused as a
whole), rows of at most ``ROW_MAX_BYTES`` streamed with their physical line
numbers."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from qinqing.kit.errors import DomainError

COLUMNS: tuple[str, ...] = ("id_number", "name", "region_code", "scheme", "status", "phone")
# Optional last column: a minor's registered guardians' ID numbers, ";"-separated.
GUARDIANS = "guardians"
EXPECTED_HEADER = ",".join(COLUMNS)
HEADERS = (COLUMNS, (*COLUMNS, GUARDIANS))
DEFAULT_CHUNK_ROWS = 20_000
# A real row is under 400 bytes; anything far longer is a broken file, and reading
# it whole would let one line take the process's memory.
ROW_MAX_BYTES = 4096
# The encodings a file may be read as; "gbk" is read as GB18030, its superset, so
# every GBK file decodes exactly as GBK would.
ENCODINGS = {"utf-8": "utf-8", "gbk": "gb18030", "gb18030": "gb18030"}
SNIFF_BYTES = 256 * 1024


def looks_like_gbk(head: bytes) -> bool:
    """True when the lines of ``head`` (the start of a file) that are not ASCII are all
    GB18030/GBK and none of them is UTF-8: a file saved in GBK, not a UTF-8 file with
    a stray line (that line alone is refused). A last line cut short is ignored."""
    lines = head.split(b"\n")
    if not head.endswith(b"\n"):
        lines = lines[:-1] or lines
    gbk_lines = 0
    for line in lines:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            return False
        except UnicodeDecodeError:
            pass
        try:
            line.decode("gb18030")
        except UnicodeDecodeError:
            return False
        gbk_lines += 1
    return gbk_lines > 0


class CsvSource:
    """Physical lines of a binary file, decoded; counts lines and remembers the
    undecodable ones and the ones over ``ROW_MAX_BYTES`` (read no further than that)."""

    def __init__(self, fh: IO[bytes], encoding: str = "utf-8") -> None:
        self._fh = fh
        self._codec = ENCODINGS[encoding]
        self.line_no = 0
        self.bad_lines: set[int] = set()
        self.long_lines: set[int] = set()

    def _lines(self) -> Iterator[bytes]:
        while raw := self._fh.readline(ROW_MAX_BYTES + 1):
            if len(raw) > ROW_MAX_BYTES and not raw.endswith(b"\n"):
                # Skip the rest of the line without holding it.
                while (rest := self._fh.readline(64 * 1024)) and not rest.endswith(b"\n"):
                    pass
                yield b""
                continue
            yield raw

    def __iter__(self) -> Iterator[str]:
        for raw in self._lines():
            self.line_no += 1
            if not raw or len(raw) > ROW_MAX_BYTES:
                self.long_lines.add(self.line_no)
                yield "\n"
                continue
            if self.line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode(self._codec)
            except UnicodeDecodeError:
                self.bad_lines.add(self.line_no)
                yield raw.decode(self._codec, errors="replace")

    @property
    def bytes_read(self) -> int:
        return self._fh.tell()


def records(source: CsvSource) -> Iterator[tuple[int, list[str], str | None]]:
    """(first physical line, fields, problem code or None) per CSV record.

    Blank lines are skipped. A record spanning several physical lines (a quoted
    field with a line break) is numbered by its first line.
    """
    reader = csv.reader(source, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = source.line_no
            # csv's own limit (128 KiB) stops a quoted field that runs over many lines.
            too_long = "field larger than field limit" in str(exc) or any(
                start <= n <= end for n in source.long_lines
            )
            yield start, [], "ROW_TOO_LONG" if too_long else "CSV_MALFORMED"
            continue
        end = reader.line_num
        if source.long_lines and any(start <= n <= end for n in source.long_lines):
            yield start, [], "ROW_TOO_LONG"
            continue
        if not fields:
            continue
        if source.bad_lines and any(start <= n <= end for n in source.bad_lines):
            yield start, fields, "ENCODING_INVALID"
            continue
        yield start, fields, None


def check_header(record: tuple[int, list[str], str | None] | None) -> tuple[str, ...]:
    """The file's columns: exactly ``EXPECTED_HEADER``, optionally followed by
    ``guardians``; else 422 ``CSV_HEADER_INVALID`` (nothing is imported)."""
    if record is not None and record[0] == 1 and record[2] is None:
        columns = tuple(f.strip() for f in record[1])
        if columns in HEADERS:
            return columns
    raise DomainError("CSV_HEADER_INVALID", 422, expected=EXPECTED_HEADER)
