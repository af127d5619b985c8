"""Hypothesis profiles: ``ci`` runs every property test with its full number of
examples, ``dev`` (the default outside CI) with a quarter of them.

``HYPOTHESIS_PROFILE`` picks one; without it, ``CI=true`` means ``ci`` and anything
else ``dev``. A test that names its own count writes ``max_examples=examples(60)``:
60 under ``ci``, 15 under ``dev``.
"""

from __future__ import annotations

import os

from hypothesis import settings

# Hypothesis' own default, which the tests without a count of their own ran with.
CI_EXAMPLES = 100
DEV_EXAMPLES = 25


def load_profile(in_ci: bool) -> str:
    """Register both profiles, load the chosen one and return its name."""
    settings.register_profile("ci", max_examples=CI_EXAMPLES)
    settings.register_profile("dev", max_examples=DEV_EXAMPLES)
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if in_ci else "dev")
    settings.load_profile(name)
    return name


def examples(full: int) -> int:
    """``full`` under the ``ci`` profile; the same share of the loaded profile's
    ``max_examples`` otherwise (at least 1)."""
    return max(1, full * settings().max_examples // CI_EXAMPLES)
