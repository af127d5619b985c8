"""Messages by code and locale (zh-CN default, en), from TOML catalogs.

The catalogs live in ``messages/<part>.<locale>.toml`` (``core``, ``family``,
``unbind``, ...): one table per code with ``message`` and optional ``hint``,
both ``str.format`` templates over the error's parameters. A code defined in
two files of one locale is an error.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale, UnknownLocaleError

DEFAULT_LOCALE = "zh-CN"
SUPPORTED = ("zh-CN", "en")
_SUFFIX = {"zh-CN": ".zh_CN.toml", "en": ".en.toml"}


@cache
def catalog(locale: str) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    folder = resources.files("qinqing").joinpath("messages")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(_SUFFIX[locale]):
            continue
        for code, text_ in tomllib.loads(entry.read_text("utf-8")).items():
            if code in merged:
                raise ValueError(f"message code {code} defined twice ({entry.name})")
            merged[code] = text_
    return merged


def negotiate(accept_language: str | None) -> str:
    """Pick zh-CN or en from an Accept-Language header (q-values respected)."""
    if not accept_language:
        return DEFAULT_LOCALE
    prefs: list[tuple[float, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        prefs.append((-weight + i * 1e-6, tag.strip()))
    for _, tag in sorted(prefs):
        if not tag or tag == "*":
            continue
        try:
            lang = Locale.parse(tag.replace("-", "_")).language
        except (ValueError, UnknownLocaleError):
            continue
        if lang == "zh":
            return "zh-CN"
        if lang == "en":
            return "en"
    return DEFAULT_LOCALE


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def text(code: str, locale: str, params: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """The (message, hint) for a code; unknown codes fall back to the code itself."""
    entry = catalog(locale).get(code) or catalog(DEFAULT_LOCALE).get(code)
    if entry is None:
        return code, None
    values = _SafeDict(params or {})
    message = entry["message"].format_map(values)
    hint = entry.get("hint")
    # A hint may have a variant used when a parameter is known, e.g.
    # ``hint_with_remaining_attempts`` ("还可尝试 4 次").
    for key, variant in entry.items():
        if key.startswith("hint_with_") and key.removeprefix("hint_with_") in values:
            hint = variant
            break
    return message, (hint.format_map(values) if hint else None)


def N_(message: str) -> str:
    """Mark a message id for the web app's catalogs (``make locales-extract``); it is
    translated where it is shown."""
    return message
