"""The demo families are bound by the family service, and loading twice is harmless."""

from __future__ import annotations

from sqlalchemy import select

from qinqing.audit.service import verify
from qinqing.entrypoints import demo
from qinqing.family.models import FamilyLink
from qinqing.persons.models import Person
from qinqing.runtime import Runtime


def test_demo_families(rt: Runtime) -> None:
    assert demo.load(rt) is True
    assert demo.load(rt) is False
    with rt.db.unit_of_work() as s:
        names = {p.id: p.name for p in s.execute(select(Person)).scalars()}
        links = {
            (names[link.holder_id], names[link.member_id]): (
                link.relation,
                link.mutual_aid,
                link.status,
            )
            for link in s.execute(select(FamilyLink)).scalars()
        }
        assert verify(s).ok
    assert links == {
        ("张伟", "李娜"): ("spouse", True, "active"),
        ("张伟", "张建国"): ("father", True, "active"),
        ("张伟", "王秀英"): ("mother", False, "active"),
        ("张伟", "张子涵"): ("child", True, "active"),
        ("陈明", "林芳"): ("spouse", True, "active"),
        ("陈明", "陈国强"): ("father", False, "pending_consent"),
        # Across provinces (鄂尔多斯 and 广州): through a 共济额度.
        ("李娜", "黄桂兰"): ("mother", True, "active"),
    }
