"""Every stable code the service can answer with has a message in zh-CN and en."""

from __future__ import annotations

import re
from pathlib import Path

import qinqing
from qinqing.kit import i18n
from qinqing.persons.import_rows import REASONS as IMPORT_ROW_REASONS

SRC = Path(qinqing.__file__).parent
CODE = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
# Environment variables named in CLI help and messages.
NOT_CODES = {
    "QINQING_ENV",
    "QINQING_FACE_PROVIDER",
    "QINQING_NEW_PASSWORD",
    "QINQING_DATABASE_URL",
    "QINQING_NEW_SECRET_KEY",
    "QINQING_SECRET_KEY",
    # The Prometheus client's multiprocess directory (kit.metrics).
    "PROMETHEUS_MULTIPROC_DIR",
}
# Import row codes carry their own English reason in the report (persons.importer).
IMPORT_ROW_CODES = set(IMPORT_ROW_REASONS) | {"DUPLICATE_IN_FILE"}


def test_both_locales_define_the_same_codes() -> None:
    assert set(i18n.catalog("en")) == set(i18n.catalog("zh-CN"))


def test_every_code_in_the_source_has_a_message() -> None:
    known = set(i18n.catalog("en")) | IMPORT_ROW_CODES | NOT_CODES
    used: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for m in CODE.finditer(path.read_text("utf-8")):
            used.setdefault(m.group(1), path.name)
    missing = {code: where for code, where in used.items() if code not in known}
    assert not missing, f"codes without a message: {missing}"


def test_messages_render_with_their_parameters() -> None:
    message, hint = i18n.text("LOGIN_LOCKED", "zh-CN", {"retry_after": 42})
    assert message == "登录失败次数过多。"
    assert "42" in (hint or "")
    # A missing parameter shows as a placeholder, never an error.
    assert i18n.text("LOGIN_LOCKED", "en", {})[1] == "Try again in {retry_after} seconds."


def test_a_hint_variant_is_used_when_its_parameter_is_known() -> None:
    _, hint = i18n.text("VERIFICATION_FAILED", "zh-CN", {"remaining_attempts": 4})
    assert hint == "请核对支付密码后重试。还可尝试 4 次，之后将锁定 3 小时。"
    _, plain = i18n.text("VERIFICATION_FAILED", "zh-CN", {})
    assert plain is not None and "{" not in plain
