"""Settings from QINQING_* environment variables (docs/guide.md §5.2, §7).

QINQING_DATABASE_URL, QINQING_DATA_DIR (default ./qinqing-data), QINQING_ENV,
QINQING_SECRET_KEY, QINQING_POLICY_DIR, QINQING_FACE_PROVIDER, QINQING_LOG_JSON,
QINQING_SMS_PROVIDER (registration codes; default `simulated` outside production,
`none` in production), QINQING_TRUSTED_PROXIES (comma-separated IPs or CIDRs whose
X-Forwarded-For is believed; default none), QINQING_DISTRIBUTED (unset or empty:
one database; `citus`: the database is a Citus coordinator and migrating places the
tables, docs/operations.md "Citus"), QINQING_METRICS_TOKEN, QINQING_METRICS_SCRAPERS,
QINQING_METRICS_DIR and QINQING_SHUTDOWN_GRACE_SECONDS (docs/operations.md "Metrics",
"Stopping cleanly").
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator
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
    # SMS for registration codes; None means `simulated` outside production, `none` in it.
    sms_provider: str | None = None
    # Peers whose X-Forwarded-For names the real client; anyone else is taken at its
    # socket address (a client can write any header it likes).
    trusted_proxies: str = ""
    # "" or "citus" (qinqing.schema.citus.wanted checks it, so a bad value is a clean exit 2).
    distributed: str = ""
    # Institutions' single payments through one server-side function per operation
    # on PostgreSQL (qinqing.payments.fast); off: the ORM path, as on SQLite.
    payment_fast_path: bool = True
    # On the fast path: concurrent single payments without an Idempotency-Key share
    # one transaction and one round trip (qinqing.payments.fast, "group commit").
    group_commit: bool = False

    access_token_ttl_seconds: int = 1800
    client_token_ttl_seconds: int = 3600
    # Login throttling. Per account: after `login_max_failures` failures in a row each
    # further failure makes the next attempt wait 1 s, 2 s, 4 s ... up to the cap; a
    # success, or `login_failure_memory_hours` without failures, starts over.
    login_max_failures: int = 5
    login_delay_cap_seconds: int = 300
    login_failure_memory_hours: int = 24
    # Per source address: this many failures within `login_lock_minutes` pause it.
    login_lock_minutes: int = 15
    login_max_failures_per_address: int = 30
    # Registration codes by SMS: lifetime, tries, and how often one may be sent.
    sms_code_ttl_seconds: int = 300
    sms_code_max_tries: int = 5
    sms_resend_seconds: int = 60
    sms_max_per_hour: int = 5
    # And at most this many a day (the same ID number and name).
    sms_max_per_day: int = 10
    sms_max_per_address_hour: int = 20
    # Payment password (docs/guide.md §3): 5 consecutive failures lock it for 3 hours.
    payment_max_failures: int = 5
    payment_lock_hours: int = 3
    # Institution probes (docs/ledger.md "Probes by ID number"): an institution's
    # authorizations by two bare ID numbers refused for a reason about the persons
    # (MUTUAL_AID_UNAVAILABLE) are counted per client and hour; past this many, its
    # bare-ID authorizations answer 429 AUTHORIZE_RATE_LIMITED until the hour is over.
    authorize_failures_per_hour: int = Field(default=60, ge=1)
    # A family e-voucher an institution redeemed (or paid with) in the last this many
    # hours lets it see the real refusal of a bare-ID authorization for that holder
    # and member: the holder showed it the link.
    authorize_voucher_hours: int = Field(default=24, ge=1, le=24 * 30)
    # argon2id cost; lowered only by the test suite.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 2

    log_json: bool | None = None

    # /metrics (docs/operations.md "Metrics"): answered to a bearer of this token or to a
    # client at one of these addresses (comma-separated IPs or CIDRs), to no one else
    # (404). None set: to no one.
    metrics_token: str | None = Field(default=None, repr=False)
    metrics_scrapers: str = ""
    # The directory every qinqing process of the host records its metrics into, so one
    # scrape shows them all; None: `metrics/` in the data directory; "" (set empty): none,
    # each process counts in its own memory.
    metrics_dir: str | None = None
    # `serve`: on SIGTERM, how long in-flight requests may take to finish before the
    # server closes their connections (seconds).
    shutdown_grace_seconds: int = Field(default=20, ge=1, le=600)

    @field_validator("trusted_proxies", "metrics_scrapers")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
        return value

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
    def trusted_proxy_list(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def metrics_scraper_list(self) -> list[str]:
        return _split(self.metrics_scrapers)

    @property
    def effective_metrics_dir(self) -> Path | None:
        """Where this host's processes record their metrics; None: in memory."""
        if self.metrics_dir is None:
            return self.data_dir / "metrics"
        return Path(self.metrics_dir) if self.metrics_dir.strip() else None

    @property
    def effective_sms_provider(self) -> str:
        if self.sms_provider:
            return self.sms_provider
        return "none" if self.is_production else "simulated"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qinqing.sqlite3').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]
