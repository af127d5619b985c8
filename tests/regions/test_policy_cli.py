"""``qinqing policy explain`` against the Typer app itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qinqing.regions.cli import policy_app

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
    }
    assert values["max_members"]["source"] == "qinqing/regions/policies/national.toml"
    assert values["relations"]["value"] == ["spouse", "father", "mother", "child"]


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


def test_unknown_region_exits_1() -> None:
    result = runner.invoke(policy_app, ["explain", "999999"])
    assert result.exit_code == 1
    assert "unknown region" in result.stderr
    assert result.stdout == ""


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
