"""The printed receipt of a counter unbind (回执), as a PDF made with reportlab.

Chinese text uses the Adobe CID font ``STSong-Light`` (reportlab's
``UnicodeCIDFont``, encoding UniGB-UCS2-H): the font is not embedded, every
PDF reader ships it or a substitute, and text extraction (pypdf) maps it back
to Unicode through the predefined CMap, so nothing has to be installed on the
server. A5 portrait, the size agencies print slips on. Personal data on the
receipt is masked (names ``张*``, ID numbers ``150602********0023``): a receipt
is handed over and may be lost.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

# reportlab ships no type hints (typeshed's types-reportlab is not a dependency).
from reportlab.lib.pagesizes import A5  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]
from starlette.responses import Response

from qinqing.counter import rules
from qinqing.counter.service import ReceiptData
from qinqing.family.relations import RELATION_NAMES
from qinqing.kit.clock import CHINA_TZ, as_utc

FONT = "STSong-Light"
TITLE = "医保亲情账户解除绑定回执"
TITLES = {"unbind": TITLE, "proof": "医保亲情账户监护关系查验回执"}
BUSINESS = {
    "unbind": "解除亲情关系（窗口代办）",
    "proof": "未成年人亲情账户监护关系查验（窗口查验证明材料）",
}
HOTLINE = "12333"

_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def beijing_time(moment: datetime) -> str:
    """``2026年11月23日 17:00（北京时间）``."""
    local = as_utc(moment).astimezone(CHINA_TZ)
    return f"{local:%Y年%m月%d日 %H:%M}（北京时间）"


def agency_name(data: ReceiptData) -> str:
    return f"{data.region_name}医疗保障经办机构"


def lines(data: ReceiptData) -> list[tuple[str, str]]:
    """The receipt's fields in print order: (label, value)."""
    out = [
        ("经办机构", f"{agency_name(data)}（统筹区 {data.region_code}）"),
        ("业务类型", BUSINESS.get(data.business, data.business)),
        ("申请表编号", data.form_number),
        ("申请方", rules.PARTY_LABELS.get(data.on_behalf_of, data.on_behalf_of)),
        ("绑定人", f"{data.holder_name}  {data.holder_id_number}"),
        ("家庭成员", f"{data.member_name}  {data.member_id_number}"),
        (
            "关系",
            f"{RELATION_NAMES.get(data.relation, data.relation)}"
            f"（家庭共济：{'是' if data.mutual_aid else '否'}）",
        ),
        *([("监护证明", data.proof_document)] if data.proof_document else []),
        ("办理时间", beijing_time(data.created_at)),
        ("办理结果", rules.outcome_label(data.status)),
    ]
    if data.decided_at is not None:
        out.append(("审核时间", beijing_time(data.decided_at)))
        if data.decision_comment:
            out.append(("审核意见", data.decision_comment))
    out += [("经办人", data.clerk_username), ("业务编号", data.request_id)]
    return out


def _wrap(text: str, width: float, size: float) -> Iterator[str]:
    """Break text into lines no wider than ``width`` (character by character:
    Chinese has no spaces to break at)."""
    line = ""
    for ch in text:
        if line and pdfmetrics.stringWidth(line + ch, FONT, size) > width:
            yield line
            line = ""
        line += ch
    yield line


def render(data: ReceiptData) -> bytes:
    """The receipt as PDF bytes (deterministic for the same data)."""
    font = _font()
    buf = io.BytesIO()
    page_w, page_h = A5
    pdf = canvas.Canvas(buf, pagesize=A5, invariant=True, pageCompression=1)
    title = TITLES.get(data.business, TITLE)
    pdf.setTitle(title)
    pdf.setAuthor(agency_name(data))
    pdf.setSubject(f"{data.business} {data.request_id}")

    left, right = 14 * mm, page_w - 14 * mm
    y = page_h - 20 * mm
    pdf.setFont(font, 15)
    pdf.drawCentredString(page_w / 2, y, title)
    y -= 6 * mm
    pdf.setLineWidth(0.6)
    pdf.line(left, y, right, y)
    y -= 8 * mm

    size, leading = 10.5, 6.2 * mm
    fields = lines(data)
    # Labels right-aligned with ideographic spaces (every CJK glyph is 1 em wide),
    # label and value in one string: they read back as one line ("办理结果：审核中").
    width = max(len(label) for label, _ in fields) + 1
    pdf.setFont(font, size)
    for label, value in fields:
        head = f"{label}：".rjust(width, "\u3000")
        indent = "\u3000" * width
        room = right - left - pdfmetrics.stringWidth(indent, font, size)
        for i, part in enumerate(_wrap(value, room, size)):
            pdf.drawString(left, y, (head if i == 0 else indent) + part)
            y -= leading
        y -= 1 * mm

    y -= 2 * mm
    pdf.line(left, y, right, y)
    y -= 6 * mm
    pdf.setFont(font, 9)
    notes = [
        "本回执由窗口经办人员打印，请妥善保管。",
        "结果为“审核中”的，审核完成后将通知绑定双方。",
        f"如有疑问，请凭业务编号咨询经办机构或拨打 {HOTLINE}。",
    ]
    for note in notes:
        for part in _wrap(note, right - left, 9):
            pdf.drawString(left, y, part)
            y -= 5 * mm
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def as_response(data: ReceiptData, *, disposition: Literal["inline", "attachment"]) -> Response:
    """The receipt as an HTTP answer, for the API (shown ``inline``) and for the
    clerk's 打印回执 in the browser (an ``attachment`` to print): never cached, as
    every answer that names persons, even masked; never sniffed as anything else."""
    return Response(
        render(data),
        media_type="application/pdf",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{disposition}; filename="receipt-{data.request_id}.pdf"',
        },
    )
