"""Read back the e-voucher QR a page shows (segno's SVG), for the browser tests.

No QR decoder ships with our dependencies, and the voucher token is nowhere
else on the page (by design), so this decodes the small byte-mode codes the
voucher uses (versions 1-6): the SVG path back to modules, then the standard
zigzag read. Whatever it reads is checked by encoding it again with segno and
comparing every module, so a wrong read fails loudly instead of passing.
"""

from __future__ import annotations

import re

import segno

BORDER = 4
# version -> total codewords, and per error level the blocks' data codewords.
TOTAL = {1: 26, 2: 44, 3: 70, 4: 100, 5: 134, 6: 172}
BLOCKS: dict[int, dict[str, list[int]]] = {
    1: {"L": [19], "M": [16], "Q": [13], "H": [9]},
    2: {"L": [34], "M": [28], "Q": [22], "H": [16]},
    3: {"L": [55], "M": [44], "Q": [17, 17], "H": [13, 13]},
    4: {"L": [80], "M": [32, 32], "Q": [24, 24], "H": [9, 9, 9, 9]},
    5: {"L": [108], "M": [43, 43], "Q": [15, 15, 16, 16], "H": [11, 11, 12, 12]},
    6: {"L": [68, 68], "M": [27, 27, 27, 27], "Q": [19, 19, 19, 19], "H": [15, 15, 15, 15]},
}
ALIGN = {1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34]}
MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


def modules(svg: str) -> list[list[bool]]:
    """The dark modules of segno's SVG (one ``h`` stroke per run of dark modules)."""
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    scale = int(re.search(r"scale\((\d+)\)", svg).group(1))  # type: ignore[union-attr]
    n = width // scale - 2 * BORDER
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    grid = [[False] * n for _ in range(n)]
    x = y = 0.0
    for cmd, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?:\s+(-?[\d.]+))?", path):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:  # h: a horizontal run on row y - 0.5
            for col in range(int(x), int(x + float(a))):
                grid[int(y) - BORDER][col - BORDER] = True
            x += float(a)
    return grid


def _function_map(version: int) -> list[list[bool]]:
    n = 17 + 4 * version
    used = [[False] * n for _ in range(n)]

    def box(r0: int, c0: int, h: int, w: int) -> None:
        for r in range(max(r0, 0), min(r0 + h, n)):
            for c in range(max(c0, 0), min(c0 + w, n)):
                used[r][c] = True

    box(0, 0, 9, 9)  # finder, separator and format info
    box(0, n - 8, 9, 8)
    box(n - 8, 0, 8, 9)
    box(6, 0, 1, n)  # timing
    box(0, 6, n, 1)
    centers = ALIGN[version]
    for r in centers:
        for c in centers:
            if (r, c) in ((6, 6), (6, centers[-1]), (centers[-1], 6)):
                continue
            box(r - 2, c - 2, 5, 5)
    used[4 * version + 9][8] = True  # the dark module
    return used


def _bits(grid: list[list[bool]], version: int, mask: int) -> list[int]:
    n = len(grid)
    used = _function_map(version)
    out: list[int] = []
    col, upward = n - 1, True
    while col > 0:
        if col == 6:
            col -= 1
        rows = range(n - 1, -1, -1) if upward else range(n)
        for r in rows:
            for c in (col, col - 1):
                if not used[r][c]:
                    out.append(int(grid[r][c] ^ MASKS[mask](r, c)))
        col, upward = col - 2, not upward
    return out


def _payload(bits: list[int], version: int, level: str) -> bytes | None:
    words = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    sizes = BLOCKS[version][level]
    blocks: list[list[int]] = [[] for _ in sizes]
    i = 0
    for k in range(max(sizes)):
        for b, size in enumerate(sizes):
            if k < size:
                blocks[b].append(words[i])
                i += 1
    data = "".join(f"{w:08b}" for block in blocks for w in block)
    if data[:4] != "0100":  # byte mode
        return None
    count = int(data[4:12], 2)
    body = data[12 : 12 + 8 * count]
    if len(body) < 8 * count:
        return None
    return bytes(int(body[j : j + 8], 2) for j in range(0, len(body), 8))


def decode(svg: str) -> str:
    """The text of the QR in ``svg``; raises unless re-encoding it gives the same code."""
    grid = modules(svg)
    version = (len(grid) - 17) // 4
    for level in "LMQH":
        for mask in range(8):
            raw = _payload(_bits(grid, version, mask), version, level)
            if raw is None:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            again = segno.make(
                text, version=version, error=level, mask=mask, mode="byte", boost_error=False
            )
            if [[bool(v) for v in row] for row in again.matrix] == grid:
                return text
    raise AssertionError("the QR code could not be read back")
