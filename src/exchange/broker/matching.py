"""Verification without disclosure (核验): how a claimed value is compared with the source's.

The broker answers ``match`` / ``mismatch`` / ``unknown`` per claimed item and never the
value, so the comparison has to be the one a person checking a declaration by eye would
make, not a byte comparison: ``广州市天河区天河路１２３号`` typed with full-width digits is
the address ``广州市天河区 天河路123号`` of the register. The rules, by the catalog item's
``data_type``:

``string``
    Both sides are normalised, then compared exactly: Unicode NFKC (full-width letters,
    digits, spaces and punctuation become their ordinary forms: ``（１２３）`` → ``(123)``),
    zero-width characters dropped, the middle-dot variants of transliterated names
    (``·•‧・``) and the dash variants made one, letters case-folded (``x`` = ``X`` in an ID
    number), runs of whitespace made one space, and a space dropped altogether unless it
    separates two letters or digits of a script that writes spaces between words: spaces
    inside Chinese text and around punctuation carry no meaning (``天河区 天河路`` =
    ``天河区天河路``), between Latin words they do (``LI LEI`` ≠ ``LILEI``).
``integer`` / ``decimal``
    Numerically, after removing thousands separators: ``"12,000"`` = ``12000``,
    ``"100.00"`` = ``100`` (a JSON number or a numeric string; send decimals as strings
    to keep every digit).
``date``
    As a calendar day: ``2024-03-01``, ``20240301``, ``2024/3/1``, ``2024.03.01`` and
    ``2024年3月1日`` are one day.
``datetime``
    As an instant: ISO 8601; a time without an offset is Beijing time (UTC+8), the
    platform's.
``boolean``
    ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``是``/``否``.
``binary``
    Exactly, after removing whitespace (base64 is case-sensitive).

A claim on an ``integer``, ``decimal``, ``date`` or ``datetime`` item may instead be a
range ``{"min": …, "max": …}`` (either bound may be left out; both inclusive): ``match``
when the source's value lies in it. That answers "is the declared income bracket right"
without the amount. Each range claim is audited; a caller narrowing a value by repeated
ranges shows in the audit and spends its quota.

The source may hold several records for one key (a person's several properties or
marriages): an item is ``match`` when any of them holds the claimed value, ``mismatch``
when some hold a value and none is the claimed one, and ``unknown`` when none holds a
value (no record, or the item empty in each). Items are judged one by one, not as one
record.

A claim that cannot be a value of its item (``"abc"`` for a date) is refused (422) naming
the item only. A source value that cannot be read as its type is compared as normalised
text. Nothing here puts a value in an exception or a log line.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from exchange.days import BEIJING

__all__ = [
    "MATCH",
    "MISMATCH",
    "UNKNOWN",
    "Claim",
    "ClaimError",
    "judge",
    "normalise_text",
    "parse_claim",
]

Outcome = Literal["match", "mismatch", "unknown"]
MATCH: Outcome = "match"
MISMATCH: Outcome = "mismatch"
UNKNOWN: Outcome = "unknown"

#: Longest claimed string accepted (the catalog's longest free text is 4,000 characters).
MAX_CLAIM_CHARS = 4000

_RANGED = frozenset({"integer", "decimal", "date", "datetime"})

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_DOTS = "•‧・･∙⋅"
_DASHES = "‐‑‒–—―−﹣"
# One table, applied only to text holding one of its characters: str.translate with a
# table walks every character through a dict lookup (~14 µs for a short address,
# measured), most of a comparison's cost, while the search is a compiled scan.
_TABLE = str.maketrans(
    {**dict.fromkeys(_ZERO_WIDTH, None), **dict.fromkeys(_DOTS, "·"), **dict.fromkeys(_DASHES, "-")}
)
_ODD = re.compile(f"[{_ZERO_WIDTH}{_DOTS}{_DASHES}]")
# A space is kept only between two word characters of scripts that separate words by
# spaces: next to punctuation (\W) or CJK text (Han, kana, Hangul, their punctuation) it
# is dropped.
_CJK = "\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff"
_LOOSE_SPACE = re.compile(rf" (?=[\W{_CJK}])|(?<=[\W{_CJK}]) ")
_DATE = re.compile(r"(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*[-/.月]?\s*(\d{1,2})\s*日?")
_TRUE = frozenset({"true", "1", "yes", "y", "是", "真", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "否", "假", "f"})


class ClaimError(ValueError):
    """A claim that cannot be a value of its item. The message never holds the value."""

    def __init__(self, item: str, problem: str) -> None:
        super().__init__(f"claims.{item}: {problem}")
        self.item = item
        self.problem = problem


def normalise_text(value: str) -> str:
    """The form two strings are compared in (see the module docstring)."""
    text = unicodedata.normalize("NFKC", value)
    if _ODD.search(text) is not None:
        text = text.translate(_TABLE)
    text = " ".join(text.casefold().split())
    return _LOOSE_SPACE.sub("", text) if " " in text else text


@dataclass(frozen=True, slots=True)
class Claim:
    """One claimed value, parsed for its item's type: ``equal`` or a range ``low``..``high``
    (None: open). Values are of the type's Python form (int, Decimal, date, aware
    datetime, bool, or normalised str)."""

    data_type: str
    equal: Any = None
    low: Any = None
    high: Any = None
    ranged: bool = False


def _number_text(value: str) -> str:
    return unicodedata.normalize("NFKC", value).replace(",", "").replace(" ", "").strip()


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    if isinstance(value, str):
        number = Decimal(_number_text(value))
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError
        return int(number)
    raise ValueError


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        number = Decimal(_number_text(value))
    else:
        raise ValueError
    if not number.is_finite():
        raise ValueError
    return number


def _as_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError
    found = _DATE.fullmatch(unicodedata.normalize("NFKC", value).strip())
    if found is None:
        raise ValueError
    year, month, day = (int(g) for g in found.groups())
    return dt.date(year, month, day)


def _as_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError
    text = unicodedata.normalize("NFKC", value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = normalise_text(value)
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return normalise_text(str(value))
    raise ValueError


def _as_binary(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return "".join(value.split())


_PARSERS = {
    "string": _as_text,
    "integer": _as_int,
    "decimal": _as_decimal,
    "date": _as_date,
    "datetime": _as_datetime,
    "boolean": _as_bool,
    "binary": _as_binary,
}

_EXPECTED = {
    "string": "a string",
    "integer": "an integer (a JSON number or a string of digits)",
    "decimal": "a number (a JSON number or a numeric string)",
    "date": "a date such as 2024-03-01",
    "datetime": "an ISO 8601 date and time",
    "boolean": "true or false",
    "binary": "a string",
}


def _parse(item: str, data_type: str, value: Any) -> Any:
    parser = _PARSERS.get(data_type, _as_text)
    if isinstance(value, str) and len(value) > MAX_CLAIM_CHARS:
        raise ClaimError(item, f"at most {MAX_CLAIM_CHARS:,} characters")
    try:
        return parser(value)
    except (ValueError, TypeError, ArithmeticError, OverflowError):
        # Never chained: the original exception's text may quote the value.
        raise ClaimError(item, f"expected {_EXPECTED.get(data_type, 'a string')}") from None


def parse_claim(item: str, data_type: str, value: Any) -> Claim:
    """The claim ``value`` on ``item`` of type ``data_type``; raises :class:`ClaimError`."""
    if value is None:
        raise ClaimError(item, "a claimed value is required (null is not a value)")
    if isinstance(value, dict):
        if data_type not in _RANGED:
            raise ClaimError(
                item, f"a range is accepted only on {', '.join(sorted(_RANGED))} items"
            )
        if not value or set(value) - {"min", "max"}:
            raise ClaimError(item, 'a range is {"min": …, "max": …} (either may be left out)')
        low = None if value.get("min") is None else _parse(item, data_type, value["min"])
        high = None if value.get("max") is None else _parse(item, data_type, value["max"])
        if low is None and high is None:
            raise ClaimError(item, "a range needs min, max or both")
        if low is not None and high is not None and low > high:
            raise ClaimError(item, "the range's min is above its max")
        return Claim(data_type, low=low, high=high, ranged=True)
    if isinstance(value, list):
        raise ClaimError(item, "claim one value (or a range), not a list")
    return Claim(data_type, equal=_parse(item, data_type, value))


def _source_values(value: Any) -> Iterable[Any]:
    """The comparable values of one record's item: a list holds several."""
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return [v for v in value if v is not None and v != "" and not isinstance(v, dict | list)]
    if isinstance(value, dict):
        return ()
    return (value,)


def _holds(claim: Claim, value: Any) -> bool:
    """Does one source value satisfy the claim? Never raises."""
    parser = _PARSERS.get(claim.data_type, _as_text)
    try:
        source = parser(value)
    except (ValueError, TypeError, ArithmeticError, OverflowError):
        # The source's value is not of its declared type: compare it as text, if the
        # claim has a text form at all (a range has none).
        if claim.ranged:
            return False
        try:
            return _as_text(value) == _as_text(claim.equal)
        except ValueError:
            return False
    try:
        if not claim.ranged:
            return bool(source == claim.equal)
        if claim.low is not None and source < claim.low:
            return False
        return not (claim.high is not None and source > claim.high)
    except TypeError:
        return False


def judge(claim: Claim, item: str, records: Iterable[dict[str, Any]]) -> Outcome:
    """``match`` / ``mismatch`` / ``unknown`` for ``item`` over a key's records."""
    seen = False
    for record in records:
        for value in _source_values(record.get(item)):
            seen = True
            if _holds(claim, value):
                return MATCH
    return MISMATCH if seen else UNKNOWN
