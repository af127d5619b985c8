"""The voucher as an SVG QR code (segno): what the app shows at the counter."""

from __future__ import annotations

import io

import segno

# 8 px per module and the standard 4-module quiet zone: a version-4 code of a
# 45-character token is 328 px wide, well above what counter scanners need.
SCALE = 8
BORDER = 4


def svg(token: str) -> str:
    """A standalone SVG (with viewBox, width and height) whose QR data is the token."""
    code = segno.make(token, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=SCALE,
        border=BORDER,
        xmldecl=False,
        title="医保电子凭证",
        svgclass="qinqing-voucher",
    )
    width, height = code.symbol_size(scale=SCALE, border=BORDER)
    size = f'width="{width}" height="{height}"'
    # A viewBox as well, so a page can scale it up (长辈模式) without blurring.
    return out.getvalue().decode().replace(size, f'{size} viewBox="0 0 {width} {height}"', 1)
