"""Data-quality noise: a share of a topic's records served with a defect real systems have.

The synthetic city is consistent: every department derives the same person and the same
enterprise. Real source systems are not: a clerk mis-keys a name, a death is recorded in
error or reaches one system and not another. The base libraries' quality checks
(:mod:`exchange.libraries.quality`) exist to find such disagreements, so the mock
departments can be told to make them: ``noise_rate`` in a fault profile (the definition's,
or the operator's ``PUT /departments/_faults/{code}[/{slug}]``) is the share of a topic's
records served with one defect. It is 0 by default.

Which records are noisy, and which defect each gets, is a function of the department, the
topic and the record's key alone: a noisy record is the same in every lookup, every export
and every process, and a clean one stays clean.

Defects (documented, so a conflict can be traced to its cause):

- ``name_variant``: the record's name field (``name``, ``taxpayer_name``, ``holder_name``)
  spelled differently: one character replaced by a homophone (张伟 → 张玮), an enterprise
  form written out (有限公司 → 有限责任公司), or else the last character changed;
- ``death_in_error`` (household registration only, half of its noisy records): a living
  person's household status recorded as 死亡注销 (deregistered on death); the record of a
  person already dead gets a name variant instead.
"""

from __future__ import annotations

import zlib
from typing import Any

from exchange.departments.city import mix

__all__ = ["NAME_FIELDS", "apply", "defect_of", "salt_of", "variant"]

NAME_FIELDS = ("name", "taxpayer_name", "holder_name")
_TWO64 = 18446744073709551616.0

# Common given-name characters and a homophone each (同音字): the usual mis-keying.
_HOMOPHONES = dict(
    zip(
        "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂华红英玲梅林海斌峰建文辉力燕云",
        "玮方那民婧莉蔷垒君阳永燕洁涓滔铭朝琇侠萍钢贵桦宏瑛伶玫琳凯彬锋健雯晖立艳芸",
        strict=True,
    )
)


def salt_of(code: str, slug: str) -> int:
    """The per-topic salt: two topics' noisy records are independent."""
    return zlib.crc32(f"{code}/{slug}".encode())


def variant(name: str) -> str:
    """``name`` spelled differently (never equal to it)."""
    for i, ch in enumerate(name):
        alt = _HOMOPHONES.get(ch)
        if alt is not None and alt != ch:
            return name[:i] + alt + name[i + 1 :]
    if name.endswith("有限公司"):
        return name[: -len("有限公司")] + "有限责任公司"
    if not name:
        return "某"
    return name[:-1] + chr(ord(name[-1]) + 1)


def defect_of(salt: int, key: str, rate: float) -> int | None:
    """Which defect (0 or 1) the record with ``key`` has at ``rate``, or None when clean."""
    if rate <= 0.0:
        return None
    h = mix(salt, zlib.crc32(key.encode()), len(key))
    if h >= rate * _TWO64:
        return None
    return (h >> 7) & 1


def apply(
    generator: str, record: dict[str, Any], key: str, salt: int, rate: float
) -> dict[str, Any]:
    """``record`` as a noisy source serves it (a copy when changed; the same object if not)."""
    defect = defect_of(salt, key, rate)
    if defect is None:
        return record
    out = dict(record)
    if generator == "household_registration" and defect == 1 and out.get("status") == "正常":
        out["status"] = "死亡注销"
        return out
    for field in NAME_FIELDS:
        value = out.get(field)
        if isinstance(value, str):
            out[field] = variant(value)
            break
    return out
