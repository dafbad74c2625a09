"""Identifier maths: resident ID numbers, credit codes, organisation codes, plates, licences.

The national standards (GB 11643, GB 32100) every part of the exchange checks keys against:
the catalog, the libraries, credit and licences as much as the mock departments, so the
rules live beside them rather than inside the departments' package.

Everything here is pure and allocation-light because the lookup hot path validates a key on
every request. Validators return a reason string (``None`` when valid) instead of raising, so
callers choose the error they report.
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "AREA_NAMES",
    "CREDIT_ALPHABET",
    "CREDIT_WEIGHTS",
    "CURRENT_AREAS",
    "ID_CHECK",
    "ID_WEIGHTS",
    "ORG_WEIGHTS",
    "RETIRED_AREAS",
    "credit_check_char",
    "credit_code_problem",
    "id_check_char",
    "id_number_problem",
    "luhn_digit",
    "make_credit_code",
    "make_id_number",
    "make_org_code",
    "org_check_char",
    "org_code_problem",
]

# GB/T 2260 codes of Guangzhou's eleven current districts.
CURRENT_AREAS: tuple[str, ...] = (
    "440103",
    "440104",
    "440105",
    "440106",
    "440111",
    "440112",
    "440113",
    "440114",
    "440115",
    "440117",
    "440118",
)
# Districts merged away (东山 and 芳村 in 2005, 萝岗 in 2014); IDs issued before keep them.
RETIRED_AREAS: tuple[str, ...] = ("440102", "440107", "440116")

AREA_NAMES: dict[str, str] = {
    "440100": "广州市",
    "440102": "东山区",
    "440103": "荔湾区",
    "440104": "越秀区",
    "440105": "海珠区",
    "440106": "天河区",
    "440107": "芳村区",
    "440111": "白云区",
    "440112": "黄埔区",
    "440113": "番禺区",
    "440114": "花都区",
    "440115": "南沙区",
    "440116": "萝岗区",
    "440117": "从化区",
    "440118": "增城区",
}

# The check characters' weights and alphabets (GB 11643, GB 32100, GB 11714): public, as
# the vectorised generators (exchange.departments.columns, .bulk) compute them too.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_ALPHABET)}
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Registration-department + type codes GB 32100 defines (first two characters).
_CREDIT_TYPES = frozenset(
    {
        "11",
        "12",
        "13",
        "19",
        "51",
        "52",
        "53",
        "59",
        "91",
        "92",
        "93",
        "A1",
        "A9",
        "N1",
        "N2",
        "N3",
        "N9",
        "Y1",
    }
)

ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def id_check_char(first17: str) -> str:
    """GB 11643 check character of the first 17 digits of a resident ID number."""
    total = 0
    for i in range(17):
        total += (ord(first17[i]) - 48) * ID_WEIGHTS[i]
    return ID_CHECK[total % 11]


def make_id_number(area: str, birth: dt.date, sequence: int) -> str:
    """A complete 18-character ID number from its parts (sequence 0..999)."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_check_char(first17)


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a well-formed resident ID number, or ``None`` if it is.

    Well-formed means: 18 characters, 17 digits and a digit-or-X check character that matches,
    a real calendar date not in the future and not before 1880. The area code is not checked
    against a list: an ID issued elsewhere is well-formed, just not in this city.
    """
    if len(value) != 18:
        return "an ID number has 18 characters"
    if not value[:17].isdigit() or not value[:17].isascii():
        return "the first 17 characters of an ID number are digits"
    last = value[17]
    if last == "x":
        return "the check character X is written in upper case"
    if last != "X" and not ("0" <= last <= "9"):
        return "the check character is a digit or X"
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"{value[6:14]} is not a real birth date"
    if birth.year < 1880 or birth > dt.date.today():
        return f"birth date {birth.isoformat()} is out of range"
    if value[:2] == "00":
        return "the area code is not a GB/T 2260 code"
    expected = id_check_char(value)
    if last != expected:
        return f"check character is {last}, expected {expected}"
    return None


def org_check_char(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = 0
    for i in range(8):
        c = body8[i]
        v = ord(c) - 48 if c <= "9" else ord(c) - 55  # A=10 … Z=35
        total += v * ORG_WEIGHTS[i]
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def make_org_code(body8: str) -> str:
    """The 9-character organisation code (body plus check)."""
    return body8 + org_check_char(body8)


def org_code_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 9-character GB 11714 organisation code, or ``None``."""
    if len(value) != 9:
        return "an organisation code has 9 characters"
    if not all(c in _ORG_BODY_CHARS for c in value[:8]):
        return "an organisation code body is digits and upper-case letters"
    expected = org_check_char(value[:8])
    if value[8] != expected:
        return f"organisation code check character is {value[8]}, expected {expected}"
    return None


def credit_check_char(first17: str) -> str:
    """GB 32100 check character of the first 17 characters of a credit code."""
    total = 0
    for i in range(17):
        total += _CREDIT_VALUE[first17[i]] * CREDIT_WEIGHTS[i]
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def make_credit_code(kind: str, area: str, org_body8: str) -> str:
    """A complete unified social credit code: type ``kind`` (e.g. 91), area, org code body."""
    first17 = kind + area + make_org_code(org_body8)
    return first17 + credit_check_char(first17)


def credit_code_problem(value: str) -> str | None:
    """Why ``value`` is not a well-formed unified social credit code, or ``None`` if it is."""
    if len(value) != 18:
        return "a credit code has 18 characters"
    for c in value:
        if c not in _CREDIT_VALUE:
            return f"character {c!r} is not in the GB 32100 alphabet"
    if value[:2] not in _CREDIT_TYPES:
        return f"{value[:2]} is not a registration-department and type code"
    if not value[2:8].isdigit():
        return "characters 3 to 8 are a six-digit area code"
    org = org_code_problem(value[8:17])
    if org is not None:
        return org
    expected = credit_check_char(value)
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of a digit string (used by licence and certificate numbers)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)
