from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.units import Unit, Units

BAOJI = {
    "610302": "渭滨区",
    "610303": "金台区",
    "610304": "陈仓区",
    "610305": "凤翔区",
    "610323": "岐山县",
    "610324": "扶风县",
    "610326": "眉县",
    "610327": "陇县",
    "610328": "千阳县",
    "610329": "麟游县",
    "610330": "凤县",
    "610331": "太白县",
    "610371": "高新区",
}

VALID = """
region_prefix = "6103"

[[units]]
code = "610302"
name = "渭滨区"

[[units]]
code = "610371"
name = "高新区"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "units.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_units_are_baojis_thirteen_county_level_units() -> None:
    units = Units.default()
    assert units.codes() == list(BAOJI)
    assert {code: units.name(code) for code in units.codes()} == BAOJI
    assert list(units) == [Unit(code, name) for code, name in BAOJI.items()]
    assert units.region_prefix == "6103"


def test_membership_is_by_unit_code() -> None:
    units = Units.default()
    assert "610326" in units
    assert "610113" not in units
    assert "眉县" not in units


def test_name_of_unknown_code_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="999999"):
        Units.default().name("999999")


@pytest.mark.parametrize(
    ("code", "inside"),
    [
        ("610302", True),  # a unit
        ("610371", True),  # the high-tech zone's local code
        ("610399", True),  # another code of the city
        ("610113", False),  # 西安市雁塔区
        ("620102", False),  # 兰州市城关区
    ],
)
def test_in_region_tells_whether_a_place_is_inside_baoji(code: str, inside: bool) -> None:
    assert Units.default().in_region(code) is inside


def test_a_unit_outside_the_prefix_still_counts_as_inside(tmp_path: Path) -> None:
    units = Units.load(write(tmp_path, VALID.replace("610371", "619999")))
    assert units.in_region("619999")


@pytest.mark.parametrize("code", ["6103", "6103021", "61030a", ""])
def test_in_region_refuses_a_code_that_is_not_six_digits(code: str) -> None:
    with pytest.raises(ValueError, match="6 digits"):
        Units.default().in_region(code)


def test_a_deployment_loads_its_own_units_file(tmp_path: Path) -> None:
    units = Units.load(write(tmp_path, VALID))
    assert units.codes() == ["610302", "610371"]
    assert units.name("610371") == "高新区"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("region_prefix = ", "Invalid value"),
        (VALID.replace('region_prefix = "6103"', ""), "region_prefix"),
        (VALID.replace('"6103"', "6103"), "region_prefix"),
        ('region_prefix = "6103"', "at least one [[units]]"),
        (VALID.replace('code = "610302"', 'code = "61032"'), "units[0]: code must be"),
        (VALID.replace('name = "高新区"', 'name = ""'), "units[1] (610371): name"),
        (VALID.replace("610371", "610302"), "unit code 610302 appears more than once"),
        (VALID + "\ncity = 1\n", "unknown keys city"),
        (VALID.replace('name = "渭滨区"', 'name = "渭滨区"\nnmae = "x"'), "units[0] has unknown"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as raised:
        Units.load(path)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)
