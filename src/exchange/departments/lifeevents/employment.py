"""Employment: changes of social insurance and of provident-fund accounts."""

from __future__ import annotations

import datetime as dt

from exchange.departments.lifeevents.world import (
    ACTIVE,
    TRIES,
    Change,
    World,
    beijing_day,
    with_changes,
)
from exchange.departments.prng import Rng


def social_insurance_change(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """社保参保变更 (human resources): a new employer, a contribution base adjusted, or
    contributions suspended."""
    day = beijing_day(when)
    for _ in range(TRIES):
        i, key = w.person_key(r)
        rec = w.current("social_insurance_enrolment", key)
        if rec is not None and rec["status"] == "参保缴费":
            break
    else:
        return []
    z = r.below(10)
    if z < 5:
        e, code = w.enterprise_key(r)
        firm = w.current("enterprise_registration", code)
        if firm is None or firm["status"] != ACTIVE:
            return []
        new = with_changes(
            rec, employer_credit_code=code, employer_name=firm["name"], enrolled_on=day.isoformat()
        )
        del e
    elif z < 8:
        new = with_changes(rec, contribution_base=r.between(5284, 26421))
    else:
        new = with_changes(rec, status="暂停缴费")
    return [Change("social_insurance_enrolment", i, key, new, "social_insurance_change")]


def provident_fund_change(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """住房公积金变更 (provident fund): a withdrawal (rent, purchase) or a base adjustment."""
    del when
    for _ in range(TRIES):
        i, key = w.person_key(r)
        rec = w.current("provident_fund", key)
        if rec is not None and rec["status"] == "正常":
            break
    else:
        return []
    if r.chance(0.6):
        taken = round(rec["balance"] * r.between(10, 90) / 100, 2)
        new = with_changes(rec, balance=round(rec["balance"] - taken, 2))
    else:
        base = r.between(5284, 26421)
        new = with_changes(
            rec, deposit_base=base, monthly_deposit=round(base * rec["deposit_rate"] * 2, 2)
        )
    return [Change("provident_fund", i, key, new, "provident_fund_change")]
