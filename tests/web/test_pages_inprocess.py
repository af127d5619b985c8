"""The pages in process on both databases: the session cookie over TLS, CSRF, friendly
errors for web paths while the API keeps problem+json, the counter desk's access
rules and audit, and the e-voucher shown only to a POST."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.actor import Actor
from qinqing.entrypoints.app import create_app
from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.persons.importer import import_csv
from qinqing.runtime import Runtime
from qinqing.unbind.models import UnbindRequest
from qinqing.vouchers.models import Voucher
from support.accounts import PASSWORD, STAFF_PASSWORD, add_staff, person_with_account
from support.client import AppClient
from support.counter import audit_entries, counter_family
from support.factories import person_row, write_persons_csv
from support.family import make_active_link
from support.ledger import authorize_body, fund, institution_headers, make_family
from support.pages import csrf_of, staff_browser, web_login
from support.unbind import family as unbind_family
from support.unbind import pin_verification

OPERATOR = Actor("operator", "pytest", "admin")


def test_login_over_tls_sets_a_secure_http_only_cookie(rt: Runtime, client: TestClient) -> None:
    person_with_account(rt, client, phone="13800138000")
    with AppClient(create_app(rt), base_url="https://testserver") as tls:
        form = tls.get("/login")
        answer = tls.post(
            "/login",
            data={"csrf_token": csrf_of(form.text), "login": "13800138000", "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/me"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("qq_session=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        me = tls.get("/me")
        assert me.status_code == 200 and "张三" in me.text


def test_refusals_are_pages_on_the_web_and_problems_on_the_api(
    rt: Runtime, client: TestClient
) -> None:
    person_with_account(rt, client, phone="13800138000")
    form = client.get("/login")
    refused = client.post("/login", data={"login": "13800138000", "password": PASSWORD})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    wrong = client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "login": "13800138000", "password": "nope"},
    )
    assert wrong.status_code == 422 and "账号或密码错误" in wrong.text
    client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "login": "13800138000", "password": PASSWORD},
    )
    missing = client.get("/family/links/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "找不到这个页面" in missing.text
    assert "退出登录" in missing.text  # still logged in: the header keeps its navigation
    api = client.get("/api/v1/family/links/00000000-0000-0000-0000-000000000000")
    assert api.status_code == 401 and api.json()["code"] == "UNAUTHENTICATED"


def test_counter_lookup_is_audited_and_a_foreign_clerk_finds_nobody(
    rt: Runtime, client: TestClient
) -> None:
    family = counter_family(rt)
    add_staff(rt, "clerk-gz", "clerk", "440100")
    web_login(client, "clerk-gz", STAFF_PASSWORD)
    desk = client.get("/counter")
    assert desk.status_code == 200
    found = client.post(
        "/counter/lookup",
        data={"csrf_token": csrf_of(desk.text), "id_number": family.holder_number},
    )
    # Another region's clerk gets the answer an unknown number gets, and it is audited.
    assert found.status_code == 404 and "本地区没有这个身份证号码的参保人员" in found.text
    assert family.holder_number not in found.text
    assert [e.details["found"] for e in audit_entries(rt, "counter.lookup")] == [False]


def test_counter_pages_refuse_persons_and_reviewers(rt: Runtime, client: TestClient) -> None:
    family = counter_family(rt)
    add_staff(rt, "reviewer-1", "reviewer", "150600")
    web_login(client, "reviewer-1", STAFF_PASSWORD)
    assert client.get("/counter").status_code == 403
    assert client.get(f"/counter/persons/{family.holder.id}").status_code == 403
    receipt = client.get(
        "/counter/unbind-requests/00000000-0000-0000-0000-000000000000/receipt.pdf"
    )
    assert receipt.status_code == 403 and "application/pdf" not in receipt.headers["content-type"]


def test_a_voucher_is_shown_only_to_a_post_with_its_csrf_token(
    rt: Runtime, client: TestClient
) -> None:
    person_with_account(rt, client, phone="13800138000")
    web_login(client, "13800138000", PASSWORD)
    refused = client.post("/me/voucher", data={})
    assert refused.status_code == 403 and "<svg" not in refused.text
    intro = client.get("/me/voucher")
    assert intro.status_code == 200 and "<svg" not in intro.text
    shown = client.post("/me/voucher", data={"csrf_token": csrf_of(intro.text)})
    assert shown.status_code == 200 and "<svg" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    with rt.db.read_only() as s:
        assert s.execute(select(func.count()).select_from(Voucher)).scalar_one() == 1


def test_the_clerk_sees_the_unsettled_bill_behind_the_blocker(
    rt: Runtime, client: TestClient
) -> None:
    """The counter's unbind check shows what the person's own page shows: each open
    bill's institution and amount, not only the blocker's sentence."""
    fam = make_family(rt)
    fund(rt, fam.holder_id, 100_000)
    inst = institution_headers(rt, client)
    r = client.post(
        "/api/v1/payments/authorize", json=authorize_body(fam, 12_345, "desk-1"), headers=inst
    )
    assert r.status_code == 201, r.text
    add_staff(rt, "clerk-1", "clerk", "150600")
    web_login(client, "clerk-1", STAFF_PASSWORD)
    page_ = client.get(f"/counter/links/{fam.link_id}/unbind?on_behalf_of=holder")
    assert page_.status_code == 200, page_.text
    assert 'data-code="UNSETTLED_PAYMENTS"' in page_.text
    assert "123.45" in page_.text and "尚未结算的费用" in page_.text


def test_cursor_paged_pages_refuse_page_numbers(rt: Runtime, client: TestClient) -> None:
    """我的消息 and 账户明细 page by 'older' links (a cursor): a page number, good or
    bad, is the not-found page rather than page 1 shown as if it were page N."""
    person_with_account(rt, client, phone="13800138000")
    web_login(client, "13800138000", PASSWORD)
    for path in ("/me/notifications", "/me/account"):
        assert client.get(path).status_code == 200
        for query in ("page=-1", "page_size=100000", "page=2"):
            refused = client.get(f"{path}?{query}")
            assert refused.status_code == 404 and "找不到这个页面" in refused.text, (path, query)


def _as(client: TestClient, headers: dict[str, str]) -> None:
    """The web session is the API's opaque token, in its cookie."""
    client.cookies.set("qq_session", headers["Authorization"].removeprefix("Bearer "))


def test_unbind_step_two_tells_each_party_what_ends_and_labels_are_distinct(
    rt: Runtime, client: TestClient
) -> None:
    """The holder is told that *they* can no longer show the member's e-voucher or pay
    for them; the member, that the holder can no longer do so for *them*. The
    verification method's radio buttons and the password box have labels of their
    own (with a face provider both show)."""
    made = make_active_link(rt, client, mutual_aid=True)
    _as(client, made.holder_headers)
    holder = client.get(f"/family/links/{made.link_id}/unbind")
    assert holder.status_code == 200, holder.text
    assert "您不能再为对方出示医保电子凭证" in holder.text
    assert "对方不能再为您出示" not in holder.text
    _as(client, made.member_headers)
    member = client.get(f"/family/links/{made.link_id}/unbind")
    assert "对方不能再为您出示医保电子凭证" in member.text
    assert "您不能再为对方出示" not in member.text
    for html in (holder.text, member.text):
        labels = [
            re.sub(r"<[^>]+>", "", text).strip()
            for text in re.findall(r"<label[^>]*>(.*?)</label>", html, re.S)
        ]
        assert "用支付密码核验" in labels and "用人脸核验" in labels and "支付密码" in labels
        assert len(labels) == len(set(labels)), labels
        legend = re.search(r"<legend[^>]*>(.*?)</legend>", html, re.S)
        assert legend and "核验方式" in legend.group(1)


def test_chinese_pages_say_beijing_time_wherever_they_show_a_time(
    rt: Runtime, client: TestClient
) -> None:
    made = make_active_link(rt, client, mutual_aid=True)
    _as(client, made.holder_headers)
    for path in (f"/family/links/{made.link_id}", "/me/notifications"):
        html = client.get(path).text
        text = re.sub(r"<[^>]+>", "", html)
        times = re.findall(r"\d{1,2}:\d{2}(?:（北京时间）)?", text)
        assert times, path
        assert all(t.endswith("（北京时间）") for t in times), (path, times)
    client.cookies.set("qq_lang", "en")
    english = re.sub(r"<[^>]+>", "", client.get("/me/notifications").text)
    assert "(Beijing time)" in english


def test_a_deceased_persons_pages_show_the_status_and_why_their_links_ended(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    """A death from the registry: the person's pages still open (an heir reads them),
    /me names the status, and the notice says the link ended and with whom."""
    made = make_active_link(rt, client, mutual_aid=True)
    holder = made.holder
    row = person_row(holder.id_number, holder.name, "150600", "employee", "deceased", holder.phone)
    import_csv(rt, write_persons_csv(tmp_path / "r.csv", [row]), actor=OPERATOR)
    _as(client, made.holder_headers)
    me = client.get("/me")
    assert me.status_code == 200 and "已身故" in me.text
    notices = re.sub(r"<[^>]+>", "", client.get("/me/notifications").text)
    assert f"您与 {made.member.name} 的亲情关系已解除" in notices
    client.cookies.set("qq_lang", "en")
    english = re.sub(r"<[^>]+>", "", client.get("/me/notifications").text)
    assert f"your family link with {made.member.name} has ended" in english
    assert "Deceased" in client.get("/me").text


def test_the_review_page_asks_for_a_choice_and_keeps_the_apis_comment_limit(
    rt: Runtime, client: TestClient
) -> None:
    """A reviewer's form posted without a choice is shown again with the question and
    decides nothing; a rejection's comment is kept to the 500 characters the API takes."""
    _, _, _, member_headers, link = unbind_family(rt, client, region="440100")
    submitted = client.post(
        f"/api/v1/family/links/{link.id}/unbind",
        headers=member_headers,
        json={"verification": pin_verification()},
    )
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request"]["id"]
    path = f"/review/requests/{request_id}"
    with staff_browser(rt, "reviewer-gz", "reviewer", "440100") as reviewer:
        form = reviewer.get(path).text
        assert f'maxlength="{REVIEW_COMMENT_MAX}"' in form  # a browser holds to it
        csrf = csrf_of(form)
        unchosen = reviewer.post(path, data={"csrf_token": csrf, "comment": "已核实"})
        assert unchosen.status_code == 422 and "请选择审核结果" in unchosen.text
        assert _request_row(rt, request_id) == ("pending_review", None)

        comment = "双方已分开生活，材料不全。" * 50  # 650 characters
        rejected = reviewer.post(
            path,
            data={"csrf_token": csrf, "decision": "reject", "comment": comment},
            follow_redirects=False,
        )
        assert rejected.status_code == 303, rejected.text
    assert _request_row(rt, request_id) == ("rejected", comment[:500])
    # The applicant reads the same comment over the API.
    seen = client.get(f"/api/v1/unbind-requests/{request_id}", headers=member_headers)
    assert seen.json()["decision_comment"] == comment[:500]


def _request_row(rt: Runtime, request_id: str) -> tuple[str, str | None]:
    with rt.db.read_only() as s:
        row = s.execute(
            select(UnbindRequest.status, UnbindRequest.decision_comment).where(
                UnbindRequest.id == uuid.UUID(request_id)
            )
        ).one()
    return row[0], row[1]
