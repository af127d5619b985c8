"""Resident ID numbers (SPEC §3): GB 11643-1999 with GB/T 2260 codes of any era."""

from __future__ import annotations

from datetime import date

import pytest
from stdnum.cn import ric as stdnum_ric
from stdnum.exceptions import ValidationError

from qinqing.identity.ric import (
    IdNumber,
    InvalidIdNumber,
    area_known,
    area_name,
    normalize,
    parse,
    with_check_digit,
)
from qinqing.kit.errors import DomainError
from support.factories import id_number, make_id_number_ending_x, with_wrong_check_digit

TODAY = date(2026, 11, 23)


def _code(raw: str) -> str:
    with pytest.raises(InvalidIdNumber) as info:
        parse(raw, TODAY)
    return info.value.code


def test_a_valid_number_is_parsed() -> None:
    number = id_number("150602", date(1980, 1, 1), seq=11, sex="F")
    assert parse(number, TODAY) == IdNumber(
        number=number, birth_date=date(1980, 1, 1), sex="F", area_code="150602"
    )


def test_known_published_example_is_valid() -> None:
    # The example in python-stdnum's documentation (星子县, born 1991).
    assert parse("360426199101010071", TODAY).birth_date == date(1991, 1, 1)


@pytest.mark.parametrize(
    ("area", "born"),
    [("110105", date(1930, 5, 17)), ("440106", date(2000, 2, 29)), ("500103", date(2026, 11, 23))],
)
def test_valid_numbers_across_regions_and_dates(area: str, born: date) -> None:
    ident = parse(id_number(area, born, seq=42, sex="M"), TODAY)
    assert (ident.area_code, ident.birth_date, ident.sex) == (area, born, "M")


def test_with_check_digit_completes_17_digits() -> None:
    assert with_check_digit("36042619910101007") == "360426199101010071"


@pytest.mark.parametrize(("order", "sex"), [("001", "M"), ("002", "F"), ("119", "M"), ("990", "F")])
def test_sex_comes_from_the_17th_digit(order: str, sex: str) -> None:
    number = with_check_digit(f"15060219800101{order}")
    assert parse(number, TODAY).sex == sex


def test_x_check_digit_is_accepted_in_either_case() -> None:
    number = make_id_number_ending_x()
    assert number.endswith("X")
    assert parse(number, TODAY).number == number
    assert parse(number.lower(), TODAY).number == number


def test_surrounding_and_inner_spaces_are_removed() -> None:
    number = id_number()
    assert normalize(f"  {number[:6]} {number[6:14]} {number[14:]} ") == number
    assert parse(f" {number} ", TODAY).number == number


def test_bad_check_digit() -> None:
    assert _code(with_wrong_check_digit(id_number())) == "ID_NUMBER_CHECK_DIGIT"


@pytest.mark.parametrize("yyyymmdd", ["19800230", "19801301", "19800001", "19800100", "19810229"])
def test_birth_date_must_be_a_real_date(yyyymmdd: str) -> None:
    assert _code(with_check_digit(f"150602{yyyymmdd}002")) == "ID_NUMBER_BIRTH_DATE"


def test_birth_date_may_not_lie_in_the_future() -> None:
    tomorrow = id_number(born=date(2026, 11, 24))
    assert _code(tomorrow) == "ID_NUMBER_BIRTH_DATE"
    assert parse(id_number(born=date(2026, 11, 23)), TODAY).birth_date == TODAY


def test_implausibly_old_birth_year_is_refused() -> None:
    assert _code(id_number(born=date(1850, 1, 1))) == "ID_NUMBER_BIRTH_DATE"


@pytest.mark.parametrize("raw", ["", "15060219800101002", "1506021980010100231", "15060219800101"])
def test_wrong_length(raw: str) -> None:
    assert _code(raw) == "ID_NUMBER_LENGTH"


@pytest.mark.parametrize("raw", ["15060219800101002A", "1506021980O1010023", "X50602198001010023"])
def test_letters_are_refused(raw: str) -> None:
    assert _code(raw) == "ID_NUMBER_FORMAT"


@pytest.mark.parametrize("area", ["999999", "110199", "000000"])
def test_unknown_area_code(area: str) -> None:
    assert not area_known(area)
    assert _code(id_number(area)) == "ID_NUMBER_AREA_CODE"


def test_the_refusal_is_a_domain_error_without_the_number() -> None:
    number = with_wrong_check_digit(id_number())
    with pytest.raises(DomainError) as info:
        parse(number, TODAY)
    assert info.value.status == 422
    assert number not in str(info.value) + repr(info.value) + repr(info.value.params)


# --- the difference from stdnum.cn.ric.validate: codes of any era are accepted ----------


def test_a_code_abolished_before_the_birth_year_is_accepted() -> None:
    # 110103 崇文区 existed until 2010; a child born in 2012 may still carry it
    # (e.g. registered under the old household code), and must not be refused.
    number = id_number("110103", date(2012, 6, 1), seq=3, sex="M")
    with pytest.raises(ValidationError):
        stdnum_ric.validate(number)
    assert parse(number, TODAY).area_code == "110103"
    assert area_name("110103") == "崇文区"


def test_a_code_created_after_the_birth_year_is_accepted() -> None:
    # 150603 康巴什区 exists since 2016; an elderly person born 1950 whose number
    # was reissued under it keeps it.
    number = id_number("150603", date(1950, 3, 8), seq=7, sex="F")
    with pytest.raises(ValidationError):
        stdnum_ric.validate(number)
    ident = parse(number, TODAY)
    assert (ident.area_code, ident.birth_date) == ("150603", date(1950, 3, 8))


def test_a_code_valid_in_the_birth_year_is_accepted_by_both() -> None:
    number = id_number("110103", date(1960, 1, 1))
    assert stdnum_ric.validate(number) == number
    assert parse(number, TODAY).number == number


@pytest.mark.parametrize("code", ["110103", "110104", "110224", "360427", "150603", "440115"])
def test_area_known_of_any_era(code: str) -> None:
    assert area_known(code)


@pytest.mark.parametrize("code", ["", "15060", "1506021", "15060a", "999999"])
def test_area_known_rejects_malformed_and_unknown(code: str) -> None:
    assert not area_known(code)
