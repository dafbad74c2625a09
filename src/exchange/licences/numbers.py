"""Licence numbers (证照编号): type code + issuer's credit code + sequence + check character.

The layout follows the assumption of the domain brief (GB/T 36903 names the same parts):
``{type code}{issuer's unified social credit code, 18}{sequence, 8 digits}{check}``, e.g.
``JHZ11440100865370246J000000127``. The check character is ISO 7064 MOD 37,36 over the
rest, so a mistyped character or two swapped neighbours are caught before any lookup.
"""

from __future__ import annotations

import re

__all__ = ["NUMBER_PATTERN", "check_char", "make_number", "number_problem", "split_number"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
CREDIT_LENGTH = 18
SEQ_DIGITS = 8
#: type code 2-8 characters, then 18 + 8 + 1
NUMBER_PATTERN = r"^[A-Z0-9]{29,35}$"
_NUMBER = re.compile(NUMBER_PATTERN)
_TAIL = CREDIT_LENGTH + SEQ_DIGITS + 1


def check_char(body: str) -> str:
    """ISO 7064 MOD 37,36 (hybrid) check character of ``body`` (digits and A-Z)."""
    m = 36
    p = m
    for ch in body:
        s = (p + _VALUE[ch]) % m or m
        p = (2 * s) % (m + 1)
    return _ALPHABET[(m + 1 - p) % m]


def make_number(type_code: str, issuer_credit_code: str, sequence: int) -> str:
    if not 0 <= sequence < 10**SEQ_DIGITS:
        raise ValueError("sequence out of range")
    body = f"{type_code}{issuer_credit_code}{sequence:0{SEQ_DIGITS}d}"
    return body + check_char(body)


def number_problem(number: str) -> str | None:
    """Why ``number`` cannot be a licence number, or None."""
    if not _NUMBER.match(number):
        return "a licence number is 29-35 characters of digits and capital letters"
    if check_char(number[:-1]) != number[-1]:
        return "the check character does not match (a mistyped number?)"
    return None


def split_number(number: str) -> tuple[str, str, int]:
    """(type code, issuer's credit code, sequence) of a well-formed number."""
    type_code = number[:-_TAIL]
    credit = number[-_TAIL : -_TAIL + CREDIT_LENGTH]
    return type_code, credit, int(number[-SEQ_DIGITS - 1 : -1])
