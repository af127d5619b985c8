"""``qinqing policy ...``: the effective policy of a region, explained (docs/guide.md §4)."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from stdnum import numdb

from qinqing.config import Settings
from qinqing.kit.errors import DomainError
from qinqing.regions.loading import load_policies
from qinqing.regions.policy import PolicyError
from qinqing.regions.registry import PolicyRegistry

policy_app = typer.Typer(help="Region policies: the effective values and where they came from.")


@policy_app.callback()
def _policy() -> None:
    """Region policies: the effective values and where they came from."""


# Units a reader needs to read a value right; keys not named here are plain counts,
# words or lists.
_DAYS, _HOURS, _YEARS = "days", "hours", "years of age"
_UNITS = {
    "unbind_cooling_off_days": _DAYS,
    "hold_expiry_hours": _HOURS,
    "consent_age": _YEARS,
}


def unit_of(key: str) -> str | None:
    """``fen`` for amounts, ``per_mille`` for contribution rates and shares."""
    if key.endswith("_fen") or key in ("contribution.base_floor", "contribution.base_ceiling"):
        return "fen"
    if key.startswith(
        ("contribution.personal.", "contribution.employer.", "contribution.personal_account_share.")
    ):
        return "per_mille"
    return _UNITS.get(key)


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d} yuan"


def _show(key: str, value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    unit = unit_of(key)
    if isinstance(value, int) and unit == "fen":
        shown = f"{value} fen ({_yuan(value)})"
        if key == "contribution.base_ceiling" and value == 0:
            shown += ", no ceiling"
        if key == "mutual_aid_yearly_limit_max_fen" and value == 0:
            shown += ", no cap"
        return shown
    if isinstance(value, int) and unit == "per_mille":
        return f"{value}‰ ({value / 10:g}%)"
    if unit is not None:
        return f"{value} {unit}"
    return str(value)


def _county_name(code: str) -> str | None:
    """The newest name python-stdnum's GB/T 2260 table gives ``code``, if any."""
    for _part, props in numdb.get("cn/loc").info(code):
        if "county" in props:
            return str(props["county"]).split(",")[-1].split("]")[-1] or None
    return None


def unknown_region_message(registry: PolicyRegistry, code: str) -> str:
    """Why ``code`` has no policy, and which regions do: a county-level code names the
    prefecture (or municipality) region that covers it."""
    known = ", ".join(f"{r.code} {r.name}" for r in registry.regions())
    message = f"unknown region {code!r}: no policy file for it"
    if re.fullmatch(r"\d{6}", code):
        for parent in (code[:4] + "00", code[:2] + "0000"):
            if parent != code and parent in registry:
                name = _county_name(code)
                what = f"{code} {name}" if name else code
                covering = registry.region(parent)
                message = (
                    f"{what} is a county-level code with no policy of its own: it lies in "
                    f"{covering.code} {covering.name}, the region (统筹区) that covers it; "
                    f"run `qinqing policy explain {covering.code}`"
                )
                break
    return f"{message}. Known regions: {known}"


@policy_app.command("explain")
def explain(
    region: Annotated[str, typer.Argument(help="6-digit region code, e.g. 150600")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print REGION's effective policy and the file that set each value.

    Amounts are in fen (1 yuan = 100 fen); contribution rates and shares are
    per mille (‰) of the base or of the personal medical amount.
    """
    settings = Settings()
    try:
        registry = load_policies(settings.policy_dir)
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        info = registry.region(region)
    except DomainError:
        typer.echo(unknown_region_message(registry, region), err=True)
        raise typer.Exit(1) from None
    values = registry.explain(region)

    if as_json:
        document = {
            "region": info.model_dump(mode="json"),
            "values": [
                {**value.model_dump(mode="json"), "unit": unit_of(value.key)} for value in values
            ],
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return

    # Plain aligned lines rather than a table: nothing is folded mid-word at 80 columns.
    shown = [(v.key, _show(v.key, v.value), v.source) for v in values]
    key_width = max(len(key) for key, _, _ in shown)
    value_width = max(len(text) for _, text, _ in shown)
    lines = [f"{info.name} ({info.code}), province {info.province_code}"]
    lines += [f"  {k:<{key_width}}  {t:<{value_width}}  {src}" for k, t, src in shown]
    lines.append("amounts in fen (100 fen = 1 yuan); rates per mille (‰)")
    typer.echo("\n".join(lines))
