"""The comparison rules of verification (核验): what counts as the same value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from exchange.broker.matching import (
    MATCH,
    MISMATCH,
    UNKNOWN,
    ClaimError,
    judge,
    normalise_text,
    parse_claim,
)


def outcome(data_type: str, claimed: Any, *values: Any) -> str:
    records = [{"x": v} for v in values]
    return judge(parse_claim("x", data_type, claimed), "x", records)


@pytest.mark.parametrize(
    ("claimed", "source"),
    [
        ("广州市天河区天河路１２３号", "广州市天河区天河路123号"),  # full-width digits
        ("广州市 天河区  天河路 123 号", "广州市天河区天河路123号"),  # spaces in Chinese text
        ("广州市天河区天河路123号（东座）", "广州市天河区天河路123号(东座)"),  # full-width ()
        ("  张三\u3000", "张三"),  # ideographic space, leading and trailing blanks
        ("张\u200b三", "张三"),  # zero-width space
        ("买买提•艾力", "买买提·艾力"),  # middle-dot variants in transliterated names
        ("11010519491231002x", "11010519491231002X"),  # the check character's case
        ("LI  LEI", "Li Lei"),  # case and runs of spaces in Latin text
        ("Ｌｉ Ｌｅｉ", "Li Lei"),  # full-width Latin letters
        ("No. 12 - 3", "No.12-3"),  # spaces around punctuation
        ("12—3", "12-3"),  # dash variants
    ],
)
def test_strings_match_after_normalising_width_space_and_case(claimed: str, source: str) -> None:
    assert outcome("string", claimed, source) == MATCH


@pytest.mark.parametrize(
    ("claimed", "source"),
    [
        ("LI LEI", "LILEI"),  # between Latin words a space is meaningful
        ("广州市天河区天河路123号", "广州市天河区天河路124号"),
        ("张三", "张三丰"),  # no prefix or substring matching
        ("广州市天河区", "广州市越秀区"),
    ],
)
def test_strings_that_differ_in_content_mismatch(claimed: str, source: str) -> None:
    assert outcome("string", claimed, source) == MISMATCH


def test_normalised_form() -> None:
    assert (
        normalise_text("广州市 天河区 天河路 １２３ 号（东座）") == "广州市天河区天河路123号(东座)"
    )
    assert normalise_text("Li\t\n Lei ") == "li lei"


@pytest.mark.parametrize(
    ("data_type", "claimed", "source", "expected"),
    [
        ("integer", 3, 3, MATCH),
        ("integer", "3", 3, MATCH),
        ("integer", "12,000", 12000, MATCH),
        ("integer", 3.0, "3", MATCH),
        ("integer", 4, 3, MISMATCH),
        ("decimal", "100.00", 100, MATCH),
        ("decimal", 100, "100.0", MATCH),
        ("decimal", "6,500.50", "6500.5", MATCH),
        ("decimal", 0.1, "0.1", MATCH),
        ("decimal", "100.01", 100, MISMATCH),
        ("date", "2024-03-01", "2024-03-01", MATCH),
        ("date", "20240301", "2024-03-01", MATCH),
        ("date", "2024/3/1", "2024-03-01", MATCH),
        ("date", "2024.03.01", "2024-03-01", MATCH),
        ("date", "2024年3月1日", "2024-03-01", MATCH),
        ("date", "2024-03-02", "2024-03-01", MISMATCH),
        ("datetime", "2024-03-01T10:00:00+08:00", "2024-03-01T02:00:00Z", MATCH),
        ("datetime", "2024-03-01T10:00:00", "2024-03-01T02:00:00+00:00", MATCH),  # Beijing
        ("datetime", "2024-03-01T10:00:01+08:00", "2024-03-01T10:00:00+08:00", MISMATCH),
        ("boolean", True, "是", MATCH),
        ("boolean", "false", 0, MATCH),
        ("boolean", "否", True, MISMATCH),
        ("binary", "aGVs bG8=", "aGVsbG8=", MATCH),
        ("binary", "AGVSBG8=", "aGVsbG8=", MISMATCH),  # base64 is case-sensitive
    ],
)
def test_typed_comparisons(data_type: str, claimed: Any, source: Any, expected: str) -> None:
    assert outcome(data_type, claimed, source) == expected


@pytest.mark.parametrize(
    ("data_type", "claimed", "source", "expected"),
    [
        ("decimal", {"min": 5000, "max": "8,000"}, "6500.50", MATCH),
        ("decimal", {"min": 5000, "max": 8000}, "8000", MATCH),  # bounds are inclusive
        ("decimal", {"min": 5000, "max": 8000}, "8000.01", MISMATCH),
        ("decimal", {"min": 5000}, "1000000", MATCH),
        ("integer", {"max": 2}, 3, MISMATCH),
        ("date", {"min": "2020-01-01", "max": "2020-12-31"}, "2020-06-30", MATCH),
        ("date", {"min": "2020-01-01"}, "2019-12-31", MISMATCH),
    ],
)
def test_range_claims(data_type: str, claimed: Any, source: Any, expected: str) -> None:
    assert outcome(data_type, claimed, source) == expected


def test_unknown_when_no_record_or_no_value() -> None:
    assert outcome("string", "张三") == UNKNOWN  # no record for the key
    assert outcome("string", "张三", None) == UNKNOWN
    assert outcome("string", "张三", "") == UNKNOWN
    assert judge(parse_claim("x", "string", "张三"), "x", [{"y": "张三"}]) == UNKNOWN


def test_several_records_match_when_any_holds_the_value() -> None:
    assert outcome("string", "广州市海珠区", "广州市天河区", "广州市海珠区") == MATCH
    assert outcome("string", "广州市白云区", "广州市天河区", "广州市海珠区") == MISMATCH
    assert outcome("string", "广州市白云区", None, "广州市白云区") == MATCH
    # A list value holds several.
    assert outcome("string", "医疗保险", ["养老保险", "医疗保险"]) == MATCH


def test_a_source_value_not_of_its_type_is_compared_as_text() -> None:
    assert outcome("date", "2024-03-01", "长期") == MISMATCH
    assert outcome("date", {"min": "2024-01-01"}, "长期") == MISMATCH
    assert outcome("integer", 5, "5 ") == MATCH


def test_parsed_claims_carry_typed_values() -> None:
    assert parse_claim("d", "date", "2024年3月1日").equal == dt.date(2024, 3, 1)
    assert parse_claim("n", "decimal", "1,000.50").equal == Decimal("1000.50")
    assert parse_claim("n", "integer", {"min": "1"}).low == 1


SECRET = "广州市越秀区秘密路9号"


@pytest.mark.parametrize(
    ("data_type", "claimed", "problem"),
    [
        ("date", "not a date " + SECRET, "expected a date"),
        ("date", "2024-02-30", "expected a date"),
        ("integer", "12.5", "expected an integer"),
        ("integer", True, "expected an integer"),
        ("decimal", "NaN", "expected a number"),
        ("decimal", "Infinity", "expected a number"),
        ("boolean", "maybe", "expected true or false"),
        ("datetime", SECRET, "expected an ISO 8601"),
        ("string", ["a", "b"], "not a list"),
        ("string", None, "required"),
        ("string", {"min": "a"}, "a range is accepted only on"),
        ("integer", {}, "a range is"),
        ("integer", {"min": 1, "top": 3}, "a range is"),
        ("integer", {"min": None}, "a range needs"),
        ("integer", {"min": 5, "max": 3}, "above its max"),
        ("string", "x" * 4001, "at most 4,000 characters"),
    ],
)
def test_claims_that_cannot_be_values_are_refused_without_echoing_them(
    data_type: str, claimed: Any, problem: str
) -> None:
    with pytest.raises(ClaimError) as caught:
        parse_claim("item", data_type, claimed)
    message = str(caught.value)
    assert problem in message
    assert message.startswith("claims.item: ")
    assert SECRET not in message
    assert "not a date" not in message
    # No chained exception (whose text might quote the value) is shown with it.
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
