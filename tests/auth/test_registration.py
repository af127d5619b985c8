"""Registration proves possession: an SMS code to the registry phone, or a face check.
On both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.auth.models import PersonAccount, RegistrationCode
from qinqing.auth.verification import simulated_face_token
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import PASSWORD, add_person, id_number, login, sms_lines

API = "/api/v1"


def ask(client: TestClient, number: str, name: str, **kw: Any) -> Any:
    return client.post(
        f"{API}/auth/register/sms-code", json={"id_number": number, "name": name}, **kw
    )


def register(
    client: TestClient, number: str, name: str, phone: str = "13800138000", **proof: str
) -> Any:
    """Register with ``phone`` as the login (by default add_person's registry phone, as
    registering with an SMS code requires)."""
    body = {"id_number": number, "name": name, "phone": phone, "password": PASSWORD}
    return client.post(f"{API}/auth/register", json={**body, **proof})


def accounts(rt: Runtime) -> int:
    with rt.db.read_only() as s:
        return s.execute(select(func.count()).select_from(PersonAccount)).scalar_one()


def visible(r: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k.lower() not in ("x-request-id", "date")}
    return r.status_code, r.json(), headers


def test_code_goes_to_the_registry_phone_and_registers(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt, name="王芳", phone="13700137000")
    r = ask(client, number, "王芳")
    assert r.status_code == 202 and "验证码" in r.json()["detail"]
    [sms] = sms_lines(rt)
    # The phone on the registry record, not one the registrant names.
    assert sms["to"] == "13700137000"
    assert len(sms["code"]) == 6 and sms["code"].isdigit() and sms["code"] in sms["text"]

    # The login is the phone the code proved: another number is not taken (and asking
    # with one code whether a number is registered tells nothing).
    other = register(client, number, "王芳", "13600136000", sms_code=sms["code"])
    assert other.status_code == 422 and other.json()["code"] == "PHONE_NOT_VERIFIED"
    r = register(client, number, "王芳", "13700137000", sms_code=sms["code"])
    assert r.status_code == 201, r.text
    assert r.json()["person_id"] == str(person.id)
    assert login(client, "13700137000")
    # The code worked once.
    again = register(client, number, "王芳", "13700137000", sms_code=sms["code"])
    assert again.status_code == 409 and again.json()["code"] == "SMS_CODE_USED"


def test_asking_for_a_code_answers_the_same_for_everyone(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, known = add_person(rt, name="王芳", phone="13700137000", seq=1)
    _, no_phone = add_person(rt, name="李四", phone=None, seq=2)
    zhao, registered = add_person(rt, name="赵敏", phone="13512345678", seq=3)
    r = register(client, registered, "赵敏", face_token=simulated_face_token(zhao.id))
    assert r.status_code == 201
    unknown = id_number(seq=40)

    answers = []
    for number, name in [
        (known, "王芳"),
        (known, "王小芳"),  # wrong name
        (unknown, "王芳"),  # not in the registry
        (no_phone, "李四"),  # no registry phone
        (registered, "赵敏"),  # already has an account
    ]:
        answers.append(visible(ask(client, number, name)))
        clock.advance(timedelta(seconds=rt.settings.sms_resend_seconds))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 202
    # Only the matching, unregistered person with a phone got a message.
    assert [m["to"] for m in sms_lines(rt)] == ["13700137000"]


def test_codes_are_stored_hashed(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="王芳")
    ask(client, number, "王芳")
    code = sms_lines(rt)[-1]["code"]
    with rt.db.read_only() as s:
        row = s.execute(select(RegistrationCode)).scalar_one()
        dumped = repr([getattr(row, c.key) for c in RegistrationCode.__table__.columns])
    assert code not in dumped


def test_wrong_code_counts_a_try_and_changes_nothing_else(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="王芳", seq=1)
    _, other = add_person(rt, name="李四", phone="13900139000", seq=2)
    ask(client, number, "王芳")
    code = sms_lines(rt)[-1]["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    r = register(client, number, "王芳", sms_code=wrong)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_INVALID"
    assert "5" in r.json()["detail"]
    assert accounts(rt) == 0
    # A wrong name, an unknown person, a person with no code: the very same answer.
    same = [
        register(client, number, "王小芳", sms_code=code),
        register(client, id_number(seq=41), "王芳", sms_code=code),
        register(client, other, "李四", "13900139000", sms_code=code),
    ]
    assert all(x.status_code == r.status_code and x.json() == r.json() for x in same)
    with rt.db.read_only() as s:
        assert s.execute(select(RegistrationCode.tries)).scalar_one() == 1
    # The right code still works.
    assert register(client, number, "王芳", sms_code=code).status_code == 201


def test_five_wrong_tries_kill_the_code(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="王芳")
    ask(client, number, "王芳")
    code = sms_lines(rt)[-1]["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(rt.settings.sms_code_max_tries):
        assert register(client, number, "王芳", sms_code=wrong).json()["code"] == "SMS_CODE_INVALID"
    r = register(client, number, "王芳", sms_code=code)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_LOCKED"
    assert accounts(rt) == 0


def test_code_expires_after_five_minutes(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, number = add_person(rt, name="王芳")
    ask(client, number, "王芳")
    code = sms_lines(rt)[-1]["code"]
    clock.advance(timedelta(seconds=rt.settings.sms_code_ttl_seconds))
    r = register(client, number, "王芳", sms_code=code)
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_EXPIRED"
    assert r.headers["content-type"].startswith("application/problem+json")
    en = client.post(
        f"{API}/auth/register",
        json={
            "id_number": number,
            "name": "王芳",
            "phone": "13600136000",
            "password": PASSWORD,
            "sms_code": code,
        },
        headers={"Accept-Language": "en"},
    )
    assert "expired" in en.json()["title"]
    assert accounts(rt) == 0


def test_resends_are_throttled_alike_for_known_and_unknown(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, number = add_person(rt, name="王芳")
    unknown = id_number(seq=42)
    assert ask(client, number, "王芳").status_code == 202
    assert ask(client, unknown, "王芳").status_code == 202
    soon_known, soon_unknown = ask(client, number, "王芳"), ask(client, unknown, "王芳")
    for r in (soon_known, soon_unknown):
        assert r.status_code == 429 and r.json()["code"] == "SMS_CODE_THROTTLED"
        assert r.headers["Retry-After"] == str(rt.settings.sms_resend_seconds)
    assert soon_known.json() == soon_unknown.json()
    assert len(sms_lines(rt)) == 1

    sent = 1
    while True:
        clock.advance(timedelta(seconds=rt.settings.sms_resend_seconds))
        r = ask(client, number, "王芳")
        if r.status_code == 429:
            break
        sent += 1
    assert sent == rt.settings.sms_max_per_hour
    assert int(r.headers["Retry-After"]) > rt.settings.sms_resend_seconds
    # A new code replaces the old one.
    codes = [m["code"] for m in sms_lines(rt)]
    assert len(codes) == sent
    if codes[0] != codes[-1]:
        assert register(client, number, "王芳", sms_code=codes[0]).json()["code"] == (
            "SMS_CODE_INVALID"
        )
    assert register(client, number, "王芳", sms_code=codes[-1]).status_code == 201


def test_one_address_cannot_spray_codes(rt: Runtime, client: TestClient) -> None:
    limit = rt.settings.sms_max_per_address_hour
    for seq in range(limit):
        assert ask(client, id_number(seq=100 + seq), "王芳").status_code == 202
    assert ask(client, id_number(seq=300), "王芳").status_code == 429


def test_face_check_registers_a_person_without_registry_phone(
    rt: Runtime, client: TestClient
) -> None:
    person, number = add_person(rt, name="李四", phone=None, seq=1)
    other, _ = add_person(rt, name="王芳", seq=2)
    assert ask(client, number, "李四").status_code == 202
    assert sms_lines(rt) == []
    r = register(client, number, "李四", face_token=simulated_face_token(other.id))
    assert r.status_code == 403 and r.json()["code"] == "VERIFICATION_FAILED"
    # A wrong name fails the face check the same way.
    r = register(client, number, "李小四", face_token=simulated_face_token(person.id))
    assert r.status_code == 403 and r.json()["code"] == "VERIFICATION_FAILED"
    assert accounts(rt) == 0
    # Another person's registry phone cannot become this login.
    r = register(client, number, "李四", "13800138000", face_token=simulated_face_token(person.id))
    assert r.status_code == 422 and r.json()["code"] == "PHONE_NOT_VERIFIED"
    r = register(client, number, "李四", "13600136000", face_token=simulated_face_token(person.id))
    assert r.status_code == 201
    r = register(client, number, "李四", "13600136000", face_token=simulated_face_token(person.id))
    assert r.status_code == 409 and r.json()["code"] == "ACCOUNT_EXISTS"


def test_registration_needs_exactly_one_proof(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt, name="王芳")
    r = register(client, number, "王芳")
    assert r.status_code == 422 and r.json()["code"] == "REGISTRATION_PROOF_REQUIRED"
    r = register(
        client, number, "王芳", sms_code="123456", face_token=simulated_face_token(person.id)
    )
    assert r.status_code == 422 and r.json()["code"] == "REGISTRATION_PROOF_REQUIRED"
    assert accounts(rt) == 0


def test_without_an_sms_provider_codes_are_unavailable(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="王芳")
    rt.settings.sms_provider = "none"
    r = ask(client, number, "王芳")
    assert r.status_code == 409 and r.json()["code"] == "SMS_UNAVAILABLE"
    assert sms_lines(rt) == []


def test_racing_registrations_for_one_phone_never_fail_with_a_500(rt: Runtime) -> None:
    import threading

    from qinqing.auth import registration
    from qinqing.kit.errors import DomainError

    people = [add_person(rt, name="王芳", phone=None, seq=seq) for seq in (1, 2, 3, 4)]
    barrier = threading.Barrier(len(people))
    outcomes: list[str] = []

    def go(person_id: Any, number: str) -> None:
        barrier.wait()
        try:
            registration.register(
                rt,
                id_number=number,
                name="王芳",
                phone="13600136000",
                password=PASSWORD,
                face_token=simulated_face_token(person_id),
            )
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=go, args=(p.id, n)) for p, n in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["PHONE_IN_USE"] * 3 + ["ok"]
    assert accounts(rt) == 1


def test_wrong_names_cannot_use_up_a_persons_codes(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    """The review: anyone knowing an ID number used up its SMS allowance with any
    name, blocking that person's registration. Wrong names spend their own."""
    _, number = add_person(rt, name="王芳")
    for n in range(rt.settings.sms_max_per_hour + 2):
        ask(client, number, f"冒名{n}")
        clock.advance(timedelta(seconds=rt.settings.sms_resend_seconds))
    assert sms_lines(rt) == []  # no wrong name ever gets a message sent
    assert ask(client, number, "王芳").status_code == 202
    assert len(sms_lines(rt)) == 1


def test_a_daily_cap_holds_after_the_hourly_ones(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, number = add_person(rt, name="王芳")
    sent = 0
    for _ in range(rt.settings.sms_max_per_day + 5):
        r = ask(client, number, "王芳")
        if r.status_code == 202:
            sent += 1
        clock.advance(timedelta(minutes=20))
    assert sent == rt.settings.sms_max_per_day
    clock.advance(timedelta(days=1))
    assert ask(client, number, "王芳").status_code == 202
