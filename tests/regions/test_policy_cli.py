"""``qinqing policy explain`` against the Typer app itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qinqing.regions.cli import policy_app
from qinqing.regions.loading import load_policies

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_operator_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QINQING_POLICY_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_explain_json() -> None:
    result = runner.invoke(policy_app, ["explain", "150600", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["region"] == {"code": "150600", "name": "鄂尔多斯市", "province_code": "15"}
    values = {item["key"]: item for item in document["values"]}
    assert values["contribution.base_floor"] == {
        "key": "contribution.base_floor",
        "value": 338500,
        "source": "qinqing/regions/policies/150600.toml",
        "unit": "fen",
    }
    assert values["contribution.personal.medical"]["unit"] == "per_mille"
    assert values["hold_expiry_hours"]["unit"] == "hours"
    assert values["max_members"]["unit"] is None
    assert values["max_members"]["source"] == "qinqing/regions/policies/national.toml"
    assert values["relations"]["value"] == [
        "spouse",
        "father",
        "mother",
        "child",
        "sibling",
        "grandparent",
        "grandchild",
    ]


def test_explain_table() -> None:
    result = runner.invoke(policy_app, ["explain", "440100"])
    assert result.exit_code == 0, result.output
    assert "广州市" in result.stdout
    line = next(row for row in result.stdout.splitlines() if "unbind_review" in row)
    assert "manual" in line
    assert "qinqing/regions/policies/440100.toml" in line
    line = next(row for row in result.stdout.splitlines() if "hold_expiry_hours" in row)
    assert "72" in line and "national.toml" in line


def test_explain_with_operator_override(tmp_path: Path) -> None:
    path = tmp_path / "500000.toml"
    path.write_text("unbind_cooling_off_days = 14\n", encoding="utf-8")
    result = runner.invoke(
        policy_app,
        ["explain", "500000", "--json"],
        env={"QINQING_POLICY_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    values = {item["key"]: item for item in json.loads(result.stdout)["values"]}
    assert values["unbind_cooling_off_days"]["value"] == 14
    assert values["unbind_cooling_off_days"]["source"] == str(path.absolute())


def test_explain_table_names_units() -> None:
    result = runner.invoke(policy_app, ["explain", "150600"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    def line(key: str) -> str:
        return next(row for row in lines if row.split()[:1] == [key])

    assert "338500 fen (3,385.00 yuan)" in line("contribution.base_floor")
    assert "20‰ (2%)" in line("contribution.personal.medical")
    assert "1000‰ (100%)" in line("contribution.personal_account_share.medical")
    assert "72 hours" in line("hold_expiry_hours")
    assert "0 fen (0.00 yuan), no cap" in line("mutual_aid_yearly_limit_max_fen")
    # One value a line, whatever the width: nothing folded onto a second line.
    expected = len(load_policies(None).explain("150600"))
    assert len([row for row in lines if row.startswith("  ")]) == expected


def test_unknown_region_exits_1_and_lists_the_known_ones() -> None:
    result = runner.invoke(policy_app, ["explain", "999999"])
    assert result.exit_code == 1
    assert "unknown region '999999'" in result.stderr
    assert "110000 北京市, 150600 鄂尔多斯市, 440100 广州市, 500000 重庆市" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("county", "name", "region"),
    [("150602", "东胜区", "150600 鄂尔多斯市"), ("110105", "朝阳区", "110000 北京市")],
)
def test_a_county_code_names_the_region_that_covers_it(county: str, name: str, region: str) -> None:
    result = runner.invoke(policy_app, ["explain", county])
    assert result.exit_code == 1
    assert f"{county} {name} is a county-level code" in result.stderr
    assert f"it lies in {region}" in result.stderr
    assert f"qinqing policy explain {region.split()[0]}" in result.stderr
    assert "Known regions: 110000 北京市" in result.stderr


def test_malformed_operator_dir_exits_2(tmp_path: Path) -> None:
    (tmp_path / "150600.toml").write_text("[contribution]\nbase_ceiling = 1000\n", encoding="utf-8")
    result = runner.invoke(
        policy_app,
        ["explain", "150600"],
        env={"QINQING_POLICY_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert str(tmp_path / "150600.toml") in result.stderr
    assert "key 'contribution.base_ceiling'" in result.stderr
    assert "must be 0 or at least base_floor" in result.stderr
