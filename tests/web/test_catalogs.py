"""The web app's words: every msgid in the templates and code has an English
translation, and no visible Chinese text is typed into a template outside gettext."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import qinqing.web
from qinqing.unbind.rules import CODES
from qinqing.web import labels
from qinqing.web.translations import LOCALES_DIR, current_locale, gettext, translations

WEB = Path(qinqing.web.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _extracted() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords=KEYWORDS, options_map={"**/templates/**.html": {}}
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_has_an_english_translation() -> None:
    with (LOCALES_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id
        and m.string
        and "fuzzy" not in m.flags
        and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    extracted = _extracted()
    assert "解除绑定" in extracted and "%(amount)s 元" in extracted  # templates and code
    missing = sorted(extracted - translated)
    assert missing == [], f"add these to the English catalog (make locales-extract): {missing}"


def test_no_visible_chinese_is_hard_coded_in_a_template() -> None:
    offenders = []
    for path in sorted((WEB / "templates").glob("*.html")):
        text = JINJA.sub("", path.read_text("utf-8"))
        for line in text.splitlines():
            if CJK.search(line):
                offenders.append(f"{path.name}: {line.strip()}")
    # The brand mark 亲 is decoration (aria-hidden), not text a person reads.
    offenders = [o for o in offenders if 'aria-hidden="true">亲<' not in o]
    assert offenders == []


def test_the_english_catalog_is_used_and_zh_cn_is_the_source() -> None:
    token = current_locale.set("en")
    try:
        assert gettext("解除绑定") == "Unbind"
        assert gettext("%(amount)s 元") % {"amount": "1.00"} == "¥1.00"
    finally:
        current_locale.reset(token)
    assert translations("zh-CN").gettext("解除绑定") == "解除绑定"


def test_help_covers_every_unbind_blocker() -> None:
    assert set(labels.BLOCKER_HELP) == set(CODES)
