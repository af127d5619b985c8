"""Startup wiring: settings → database (migrated, placed on Citus when asked),
vault key checked, policies loaded and regions synced, the partners' subscribers
plugged in, production refusals. The API, the worker and every CLI command start
from :func:`build_runtime`; nothing below ``entrypoints`` imports this module."""

from __future__ import annotations

from qinqing.auth.sms import KNOWN_PROVIDERS
from qinqing.banks import subscribers as bank_subscribers
from qinqing.banks.access import is_customer
from qinqing.config import Env, Settings
from qinqing.entrypoints.demo_credentials import demo_credentials_in_use
from qinqing.identity import keys
from qinqing.identity.vault import Vault, VaultKeyError, load_or_create_key_file, parse_key
from qinqing.kit.cli import err_console, fail
from qinqing.kit.clock import Clock, SystemClock
from qinqing.kit.db import Database, on_citus
from qinqing.notify import subscribers as notify_subscribers
from qinqing.ops.legacy import key_legacy_storage
from qinqing.quota import subscribers as quota_subscribers
from qinqing.regions.loading import load_policies
from qinqing.regions.policy import PolicyError
from qinqing.regions.service import sync_regions
from qinqing.resident import registry as resident_registry
from qinqing.runtime import Runtime
from qinqing.schema import citus
from qinqing.schema.migrate import upgrade
from qinqing.unbind import registry as unbind_registry
from qinqing.vouchers.service import shown_to


class StartupError(Exception):
    """The service refuses to start; the message says why (and never holds a secret)."""


# What a refused start may raise besides StartupError (a CLI prints them and exits 2).
REFUSALS: tuple[type[Exception], ...] = (StartupError, PolicyError, VaultKeyError)


def load_master_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return parse_key(settings.secret_key)
    if settings.is_production:
        raise StartupError(
            "production mode needs QINQING_SECRET_KEY (32 bytes, base64 or hex); "
            "generate one with `qinqing keygen`"
        )
    return load_or_create_key_file(settings.key_file)


def wire(rt: Runtime) -> Runtime:
    """Plug the partners into the core: banks hear the family and unbind events
    (their webhooks) and say whom a bank client acts for; the notices hear the
    accounts' events; a link's end returns its unused quota; the registry's
    changes of persons note the resident contributions of a member who left the
    scheme and end the links they end (in that order: ending links writes audit
    entries, the last lock); the vouchers say which links an institution was
    shown (the payments' detailed refusals)."""
    quota_subscribers.install(rt.events)
    bank_subscribers.install(rt.events)
    notify_subscribers.install(rt.events)
    resident_registry.install(rt.events)
    unbind_registry.install(rt.events)
    rt.customers = is_customer
    rt.shown_vouchers = shown_to
    return rt


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    rotating_ok: bool = False,
) -> Runtime:
    """``rotating_ok``: only for ``qinqing keys rotate``, which may (must) start while
    a rotation is unfinished."""
    settings = settings or Settings()
    try:
        distributed = citus.wanted(settings.distributed, settings.resolved_database_url)
    except citus.DistributionError as exc:
        raise StartupError(str(exc)) from None
    policies = load_policies(settings.policy_dir)
    vault = Vault(load_master_key(settings))
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url)
    # The audit chain's MAC key travels with every session (audit.service.vault_of).
    db.sessions.configure(info={"vault": vault})
    try:
        if migrate:
            try:
                upgrade(db.engine, distributed=distributed)
            except citus.DistributionError as exc:
                raise StartupError(
                    f"{exc}\n(rolled back: no migration of this run applied, no table placed)"
                ) from None
        try:
            with db.unit_of_work() as session:
                keys.ensure(session, vault, clock.now(), rotating_ok=rotating_ok)
                key_legacy_storage(session, vault)
        except keys.KeyCheckError as exc:
            raise StartupError(f"refusing to start: {exc}") from None
        if on_citus(db):
            # Every row lock on one shard, one owner at a time (qinqing.kit.locking).
            db.sessions.configure(info={"vault": vault, "one_lock_per_row": True})
        with db.unit_of_work() as session:
            sync_regions(session, policies)
        rt = wire(Runtime(settings=settings, db=db, vault=vault, policies=policies, clock=clock))
        if settings.effective_env is Env.production:
            check_production(rt)
    except BaseException:
        # A refused start must not leave its pool's connections open.
        db.dispose()
        raise
    return rt


def open_runtime(*, rotating_ok: bool = False) -> Runtime:
    """Build the runtime for a command (the CLI, ``serve``); a refused start prints why
    and exits 2. A command about to create a new embedded data directory says so
    on stderr: run from another folder, it would otherwise make a second, empty
    database beside the one the running service uses."""
    settings = Settings()
    if not settings.database_url and not settings.data_dir.exists():
        err_console.print(
            f"[yellow]note:[/] creating a new data directory {settings.data_dir.resolve()} "
            "(no Qinqing data was there). To use an existing one — a running demo's — run "
            "from its folder or set QINQING_DATA_DIR.",
            highlight=False,
            soft_wrap=True,
        )
    try:
        return build_runtime(settings, rotating_ok=rotating_ok)
    except REFUSALS as exc:
        fail(str(exc), code=2)


def check_production(rt: Runtime) -> None:
    """docs/guide.md §7: refuse the simulated face and SMS providers and every credential
    the demo publishes (staff, persons, clients, the webhook secret)."""
    problems = []
    if rt.settings.face_provider not in ("none", "simulated"):
        problems.append(f"unknown face provider {rt.settings.face_provider!r}")
    if rt.settings.face_provider == "simulated":
        problems.append("the `simulated` face provider is for demo and tests only")
    sms = rt.settings.effective_sms_provider
    if sms not in KNOWN_PROVIDERS:
        problems.append(f"unknown SMS provider {sms!r} (QINQING_SMS_PROVIDER)")
    if sms == "simulated":
        problems.append("the `simulated` SMS provider is for demo and tests only")
    with rt.db.unit_of_work() as session:
        published = demo_credentials_in_use(session, rt)
    if published:
        problems.append("the demo's published credentials still work: " + ", ".join(published))
    if problems:
        raise StartupError("production mode refuses to start: " + "; ".join(problems))
