"""The browser tests' live server and browser (plain functions, no fixtures).

``live_server`` runs a real ``qinqing serve`` on 127.0.0.1 (forked by
``support.forkserver`` from a process that imported it once), on
a fresh SQLite data directory loaded with the demo data (the families and
logins ``serve --demo`` prints) plus a few extra persons the journeys need. It
stops the server when the ``with`` block ends. ``launch`` starts Debian's
Chromium through Playwright (never Playwright's own browser download).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from qinqing.auth import service as auth
from qinqing.config import Env, Settings
from qinqing.entrypoints import demo
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.identity import ric
from qinqing.persons.service import new_person
from support.forkserver import Forked, fork_qinqing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = 390
DESKTOP = 1280
# The servers are plain HTTP on loopback; httpx would still load the TLS roots for each
# new client (about 20 ms of CPU, at every poll of a starting server): once is enough.
_TLS = httpx.create_ssl_context()

# The demo's logins (qinqing.entrypoints.demo) and the extra persons seeded here.
PERSON_PASSWORD = demo.PERSON_PASSWORD
PAYMENT_PASSWORD = demo.PAYMENT_PASSWORD
STAFF_PASSWORD = demo.STAFF_PASSWORD
ZHANG_WEI = "13800000001"  # 鄂尔多斯, employee; holds 李娜 (spouse, an open hospital hold)
LI_NA = "13800000002"
ZHANG_JIANGUO = "13800000003"  # 张伟's father, resident, has an account
CHEN_MING = "13900000001"  # 广州 (manual review); holds 林芳 (spouse)
LIN_FANG = "13900000002"
ZHANG_LI = "13800000005"  # extra: 张建国's daughter, employee, no links yet
ZHANG_LI_ID = ric.with_check_digit("15060219900808002")
ZHANG_XIAOYU = "13800000007"  # extra: 张丽's daughter, 20, resident, no links yet
ZHANG_XIAOYU_ID = ric.with_check_digit("15060220060315004")
ZHANG_JIANGUO_ID = ric.with_check_digit("15270119520118001")
ZHAO_MIN = "13800000009"  # extra: registered in the registry with this phone, no app account
ZHAO_MIN_ID = ric.with_check_digit("15060219880101002")
REVIEWER = "demo-reviewer"  # 440100
CLERK = "demo-clerk"  # 150600
HOSPITAL = ("qq_demo_hospital", "demo-hospital-secret-2026")


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30, verify=_TLS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QINQING_")}
    env.update(
        QINQING_DATA_DIR=str(data_dir),
        QINQING_ENV="development",
        # Cheap hashing: these tests are about pages, not about argon2's cost.
        QINQING_ARGON2_TIME_COST="1",
        QINQING_ARGON2_MEMORY_KIB="1024",
        QINQING_ARGON2_PARALLELISM="1",
    )
    env.update(extra)
    return env


def seed(data_dir: Path, extra_env: dict[str, str]) -> None:
    """The demo data, 张丽 and her daughter 张小雨 with app accounts (binding, consent),
    and 赵敏 with a registry phone but no account yet (registration)."""
    settings = Settings(
        data_dir=data_dir,
        env=Env.development,
        policy_dir=Path(extra_env["QINQING_POLICY_DIR"])
        if "QINQING_POLICY_DIR" in extra_env
        else None,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    rt = build_runtime(settings)
    try:
        demo.load(rt)
        extra = [
            (ZHANG_LI_ID, "张丽", "employee", ZHANG_LI),
            (ZHANG_XIAOYU_ID, "张小雨", "resident", ZHANG_XIAOYU),
        ]
        with rt.db.unit_of_work() as session:
            for number, name, scheme, phone in [
                *extra,
                (ZHAO_MIN_ID, "赵敏", "employee", ZHAO_MIN),
            ]:
                session.add(
                    new_person(
                        rt.vault,
                        ident=ric.parse(number, date.today()),
                        name=name,
                        region_code="150600",
                        scheme=scheme,
                        status="active",
                        phone=phone,
                        now=rt.clock.now(),
                    )
                )
            session.flush()
            for number, name, _scheme, phone in extra:
                auth.open_account(
                    session, rt, id_number=number, name=name, phone=phone, password=PERSON_PASSWORD
                )
    finally:
        rt.db.dispose()


def seeded_copy(template: Path, data_dir: Path) -> Path:
    """``data_dir`` as a copy of a data directory :func:`seed` filled (its database and
    its key): the same start as seeding it, without migrating and loading again."""
    shutil.copytree(template, data_dir, dirs_exist_ok=True)
    return data_dir


class StartingServer:
    """``qinqing serve`` started on ``data_dir`` (seeded already), not yet waited for:
    :meth:`wait` returns the :class:`Server` once it answers, :meth:`stop` ends it.
    A port another process took between our pick and the server's bind only costs a
    retry on another one."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.extra = extra_env
        self.attempt = 0
        (data_dir / "server.log").write_bytes(b"")
        self._spawn()

    def _spawn(self) -> None:
        self.port = _free_port()
        self.proc = fork_qinqing(
            ["serve", "--host", "127.0.0.1", "--port", str(self.port)],
            _env(self.data_dir, self.extra),
            self.data_dir / "server.log",
        )

    def wait(self) -> Server:
        while True:
            url = f"http://127.0.0.1:{self.port}"
            if _wait_ready(self.proc, url, self.data_dir, last=self.attempt == 2):
                return Server(url, self.data_dir)
            _stop(self.proc)
            self.attempt += 1
            self._spawn()

    def stop(self) -> None:
        _stop(self.proc)


@contextlib.contextmanager
def live_server(
    data_dir: Path, extra_env: dict[str, str] | None = None, *, seeded: bool = False
) -> Iterator[Server]:
    """``qinqing serve`` on ``data_dir``, seeded first unless ``seeded`` says it is
    (:func:`seeded_copy`), stopped when the block ends."""
    extra = extra_env or {}
    data_dir.mkdir(parents=True, exist_ok=True)
    if not seeded:
        seed(data_dir, extra)
    starting = StartingServer(data_dir, extra)
    try:
        yield starting.wait()
    finally:
        starting.stop()


def _stop(proc: Forked) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(proc: Forked, url: str, data_dir: Path, *, last: bool) -> bool:
    """True once the server answers; False if it exited because its port was taken
    (and this is not the ``last`` attempt); any other exit raises with its log."""
    # Start-up wait, not a measurement: a slow CI machine only waits longer.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (data_dir / "server.log").read_text("utf-8", "replace")
            if "address already in use" in log.lower() and not last:
                return False
            raise RuntimeError(log)
        try:
            # Ours, not another process that had the port: ours is still running.
            answer = httpx.get(url + "/healthz", timeout=2, verify=_TLS)
            if answer.status_code == 200 and proc.poll() is None:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("qinqing serve did not start: " + (data_dir / "server.log").read_text())


def cjk_font_installed() -> bool:
    """Whether fontconfig knows a font with Chinese glyphs (Chromium draws with these)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run(  # noqa: S603 - fontconfig's own tool, fixed arguments
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True
    )
    return bool(found.stdout.strip())


def launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# Browser contexts kept for the session and handed to one page at a time. A new context
# for each page cost about 0.75 s of Chromium's CPU more (the context's processes
# started and stopped again): over a hundred tests, a third of the browser run's CPU.
# Each context keeps a blank tab open, which keeps those processes warm between
# pages. Handed out again, a context has no cookie and no other tab: a page starts
# as a fresh browser would, except for the HTTP cache of static files.
_IDLE: dict[tuple[int, str], list[BrowserContext]] = {}
_KIND = "qinqing_context_kind"


def new_page(browser: Browser, width: int = PHONE, **options: Any) -> Page:
    """A new tab in a context of its own, clean of cookies; give it back with close_page."""
    height = 844 if width <= PHONE else 900
    kind = (id(browser), repr(sorted({"width": width, **options}.items())))
    idle = _IDLE.setdefault(kind, [])
    if idle:
        context = idle.pop()
        context.clear_cookies()
        context.clear_permissions()
    else:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        setattr(context, _KIND, kind)
        context.new_page()  # the blank tab that keeps the context warm
    return context.new_page()


def close_page(page: Page) -> None:
    """Close the tab (and any it opened) and keep its context for the next new_page."""
    context = page.context
    keeper, *others = context.pages
    for tab in others:
        tab.close()
    if keeper is page:  # cannot happen through new_page; do not keep a context that lost it
        context.close()
        return
    _IDLE[getattr(context, _KIND)].append(context)


def log_in(page: Page, server: Server, login: str, password: str = PERSON_PASSWORD) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("手机号").fill(login)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()


def api_token(server: Server, login: str, password: str = PERSON_PASSWORD) -> dict[str, str]:
    with server.api() as api:
        r = api.post("/auth/login", json={"login": login, "password": password})
        r.raise_for_status()
        return {"Authorization": "Bearer " + r.json()["access_token"]}


def settle_open_holds(server: Server, holder_login: str) -> int:
    """The hospital settles every open hold on the holder's account, over the API;
    returns how many it settled."""
    person = api_token(server, holder_login)
    with server.api() as api:
        holds = api.get("/me/account/entries", headers=person).json()["holds"]
        r = api.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": HOSPITAL[0],
                "client_secret": HOSPITAL[1],
            },
        )
        r.raise_for_status()
        hospital = {"Authorization": "Bearer " + r.json()["access_token"]}
        for hold in holds:
            settled = api.post(
                f"/payments/{hold['payment_id']}/settle",
                json={"amount_fen": hold["amount_fen"]},
                headers=hospital,
            )
            settled.raise_for_status()
    return len(holds)


def link_id_of(page: Page, name: str) -> str:
    """The link id behind the member card named ``name`` on 我的家庭成员."""
    href = page.get_by_role("link", name=name, exact=False).first.get_attribute("href") or ""
    found = re.search(r"/family/links/([0-9a-f-]{36})", href)
    assert found, href
    return found.group(1)
