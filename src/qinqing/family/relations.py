"""The relations a family link may name (docs/guide.md §3.2) and their zh-CN names.

The names are message ids of the web app's catalogs (``make locales-extract``
reads this file too), translated where shown, and what the counter's receipt
prints. Since
国办发〔2024〕38号 every province admits all seven (近亲属); a region may narrow them.
"""

from __future__ import annotations

from qinqing.kit.i18n import N_

RELATION_NAMES: dict[str, str] = {
    "spouse": N_("配偶"),
    "father": N_("父亲"),
    "mother": N_("母亲"),
    "child": N_("子女"),
    "sibling": N_("兄弟姐妹"),
    "grandparent": N_("祖父母、外祖父母"),
    "grandchild": N_("孙子女、外孙子女"),
}
RELATIONS: tuple[str, ...] = tuple(RELATION_NAMES)
