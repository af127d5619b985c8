"""Production refuses to start without a secret key, with the simulated face
provider, or with default staff passwords — and says which (SPEC §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qinqing.audit.actor import Actor
from qinqing.auth import service as auth
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import StartupError, build_runtime


def _prod(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"env": Env.production, "face_provider": "none", **changes})


def test_production_needs_a_secret_key(settings: Settings) -> None:
    with pytest.raises(StartupError, match="QINQING_SECRET_KEY"):
        build_runtime(_prod(settings, secret_key=None), migrate=False)


def test_production_refuses_simulated_face(settings: Settings) -> None:
    with pytest.raises(StartupError, match="simulated"):
        build_runtime(_prod(settings, face_provider="simulated"), migrate=False)


def test_production_refuses_simulated_sms(settings: Settings) -> None:
    with pytest.raises(StartupError, match="`simulated` SMS provider"):
        build_runtime(_prod(settings, sms_provider="simulated"), migrate=False)
    with pytest.raises(StartupError, match="unknown SMS provider 'carrier-pigeon'"):
        build_runtime(_prod(settings, sms_provider="carrier-pigeon"), migrate=False)


def test_sms_provider_defaults_to_simulated_only_outside_production(tmp_path: Path) -> None:
    for env, expected in ((Env.development, "simulated"), (Env.test, "simulated")):
        assert Settings(env=env, data_dir=tmp_path).effective_sms_provider == expected
    assert Settings(env=Env.production, data_dir=tmp_path).effective_sms_provider == "none"


def test_production_refuses_default_staff_passwords(settings: Settings) -> None:
    rt = build_runtime(settings, migrate=False)
    with rt.db.unit_of_work() as s:
        auth.add_staff(
            s,
            rt,
            username="demo-clerk",
            role="clerk",
            region_code="150600",
            password="Demo-staff-2026",
            actor=Actor("operator", "t", "admin"),
            default_password=True,
        )
    rt.db.dispose()
    with pytest.raises(StartupError, match="demo-clerk"):
        build_runtime(_prod(settings), migrate=False)


def test_production_starts_when_all_is_well(settings: Settings) -> None:
    rt = build_runtime(_prod(settings), migrate=False)
    assert rt.settings.is_production
    rt.db.dispose()


def test_env_defaults_to_production_with_a_database_url(tmp_path: Path) -> None:
    assert Settings(database_url="postgresql+psycopg://x@127.0.0.1/db", env=None).is_production
    assert not Settings(database_url=None, env=None, data_dir=tmp_path).is_production


def test_embedded_default_creates_a_private_key_file(tmp_path: Path) -> None:
    settings = Settings(
        database_url=None,
        env=Env.development,
        data_dir=tmp_path / "data",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    rt = build_runtime(settings)
    key = settings.key_file
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "data" / "qinqing.sqlite3").exists()
    first = key.read_text()
    rt.db.dispose()
    build_runtime(settings, migrate=True).db.dispose()
    assert key.read_text() == first


def test_production_refuses_every_published_demo_credential(settings: Settings) -> None:
    """The review found that only demo staff were caught: the demo clients' published
    secrets, its webhook secret and its persons' password passed. Each is named
    (without personal data), and each stops counting once it no longer opens."""
    from sqlalchemy import update

    from qinqing.auth.models import ApiClient, PersonAccount, StaffUser
    from qinqing.banks.models import WebhookEndpoint
    from qinqing.entrypoints import demo

    rt = build_runtime(settings, migrate=False)
    demo.load(rt)
    with pytest.raises(StartupError) as refused:
        build_runtime(_prod(settings), migrate=False)
    text = str(refused.value)
    for expected in (
        "staff demo-clerk (default password)",
        "API client qq_demo_bank (published secret)",
        "API client qq_demo_hospital (published secret)",
        "webhook secret of qq_demo_bank",
        "demo person account(s) (published password)",
    ):
        assert expected in text, text
    assert "13800000001" not in text and "张伟" not in text
    # An operator who disabled or replaced every one of them can start.
    other = auth.passwords(rt).hash("Another-secret-2026")
    with rt.db.unit_of_work() as s:
        s.execute(update(StaffUser).values(disabled=True))
        s.execute(update(ApiClient).values(disabled=True))
        s.execute(update(WebhookEndpoint).values(enabled=False))
        s.execute(update(PersonAccount).values(password_hash=other))
    rt.db.dispose()
    build_runtime(_prod(settings), migrate=False).db.dispose()
