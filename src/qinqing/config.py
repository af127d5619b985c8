"""Settings from QINQING_* environment variables (docs/guide.md §5.2, §7).

QINQING_DATABASE_URL, QINQING_DATA_DIR (default ./qinqing-data), QINQING_ENV,
QINQING_SECRET_KEY, QINQING_POLICY_DIR, QINQING_FACE_PROVIDER, QINQING_LOG_JSON.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Env(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QINQING_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Path("./qinqing-data")
    # Production is the default as soon as a real database is named (docs/guide.md §7).
    env: Env | None = None
    secret_key: str | None = Field(default=None, repr=False)
    policy_dir: Path | None = None
    face_provider: str = "none"

    access_token_ttl_seconds: int = 1800
    client_token_ttl_seconds: int = 3600
    # Login throttling: per account and per source address.
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    login_max_failures_per_address: int = 30
    # Payment password (docs/guide.md §3): 5 consecutive failures lock it for 3 hours.
    payment_max_failures: int = 5
    payment_lock_hours: int = 3
    # argon2id cost; lowered only by the test suite.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 2

    log_json: bool | None = None

    @model_validator(mode="after")
    def _default_env(self) -> Settings:
        if self.env is None:
            self.env = Env.production if self.database_url else Env.development
        return self

    @property
    def effective_env(self) -> Env:
        assert self.env is not None
        return self.env

    @property
    def is_production(self) -> bool:
        return self.effective_env is Env.production

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qinqing.sqlite3').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"
