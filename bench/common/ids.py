"""Generated ID numbers: real area codes of any era, random birth dates and sequence numbers."""

from __future__ import annotations

import random
from datetime import date, timedelta

# Real county-level GB/T 2260 codes, some of them abolished (110103 崇文区,
# 110104 宣武区, 110224 大兴县, 360427 星子县): numbers keep their old codes.
AREA_CODES = (
    "110101",
    "110102",
    "110103",
    "110104",
    "110105",
    "110106",
    "110108",
    "110224",
    "120101",
    "120104",
    "130102",
    "140105",
    "150102",
    "150602",
    "150603",
    "150621",
    "150622",
    "210102",
    "220102",
    "230102",
    "310101",
    "310104",
    "310115",
    "320102",
    "320106",
    "330102",
    "330106",
    "340102",
    "350102",
    "360102",
    "360427",
    "370102",
    "410102",
    "420102",
    "430102",
    "430121",
    "440103",
    "440104",
    "440106",
    "440304",
    "450102",
    "460105",
    "500101",
    "500103",
    "510104",
    "510107",
    "520102",
    "530102",
    "610102",
    "610113",
    "620102",
    "630102",
    "640104",
    "650102",
)


def first17(rnd: random.Random, first_birth: date, span_days: int) -> str:
    """The first 17 characters of a random ID number born within span_days of first_birth
    (the caller adds the check digit, and skips the ones it has seen)."""
    born = first_birth + timedelta(days=rnd.randrange(span_days))
    return f"{rnd.choice(AREA_CODES)}{born:%Y%m%d}{rnd.randrange(1000):03d}"
