"""The web app's words: Babel message catalogs, zh-CN source text, English catalog.

The msgids are the zh-CN text itself (the people this serves read Chinese
first, and the labels they rely on — 我的家庭成员, 解除绑定, ... — appear
verbatim in the templates), so zh-CN needs no catalog. English comes from
``locales/en/LC_MESSAGES/messages.po``. A compiled ``messages.mo`` is used when
it is at least as new as the ``.po`` (``make locales`` writes it); otherwise the
``.po`` is compiled in memory at first use, so a fresh checkout, an editable
install and a wheel all work without a build step that could be forgotten.

Domain error and blocker texts are not here: they come from the TOML catalogs
of :mod:`qinqing.kit.i18n`, shared with the API.
"""

from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from qinqing.kit.i18n import DEFAULT_LOCALE, N_, SUPPORTED

__all__ = ["N_"]

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
MESSAGES_DIR = "LC_" + "MESSAGES"  # gettext's folder name (not an error code)
# Language names are shown in their own language (an autonym), never translated.
AUTONYMS = {"zh-CN": "中文", "en": "English"}

current_locale: ContextVar[str] = ContextVar("qinqing_web_locale", default=DEFAULT_LOCALE)


def _catalog_dir(locale: str) -> Path:
    return LOCALES_DIR / locale.replace("-", "_") / MESSAGES_DIR


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    if locale not in SUPPORTED or locale == DEFAULT_LOCALE:
        return _gettext.NullTranslations()
    folder = _catalog_dir(locale)
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fh:
            return _gettext.GNUTranslations(fh)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)
