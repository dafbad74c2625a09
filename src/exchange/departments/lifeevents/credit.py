"""Double publicity: permits, penalties and the issue and revocation of e-licences."""

from __future__ import annotations

import datetime as dt

from exchange.departments.lifeevents.business import active_enterprise, current_licences
from exchange.departments.lifeevents.world import Change, World, beijing_day, with_changes
from exchange.departments.overlay import Record
from exchange.departments.prng import Rng


def _credit(w: World, code: str, firm: Record) -> Record:
    return w.current("credit_publicity", code) or {
        "credit_code": code,
        "name": firm["name"],
        "licensing_count": 0,
        "penalty_count": 0,
        "latest_penalty_number": None,
        "latest_penalty_reason": None,
        "latest_penalty_date": None,
        "latest_penalty_amount": None,
        "list_status": "无",
    }


def permit(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """行政许可 published for double publicity (双公示)."""
    del when
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    rec = _credit(w, code, firm)
    new = with_changes(rec, licensing_count=int(rec["licensing_count"]) + 1)
    return [Change("credit_publicity", e, code, new, "permit_granted")]


_PENALTY_REASONS = (
    "未按规定公示年度报告",
    "发布虚假广告",
    "未取得许可从事经营活动",
    "违反价格管理规定",
)


def penalty(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """行政处罚 published for double publicity; a third penalty puts the firm on the black list."""
    day = beijing_day(when)
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    rec = _credit(w, code, firm)
    count = int(rec["penalty_count"]) + 1
    new = with_changes(
        rec,
        penalty_count=count,
        latest_penalty_number=f"穗市监处罚〔{day.year}〕{r.between(1, 9999)}号",
        latest_penalty_reason=r.pick(_PENALTY_REASONS),
        latest_penalty_date=day.isoformat(),
        latest_penalty_amount=r.between(1, 200) * 500,
        list_status="黑名单" if count >= 3 else rec["list_status"],
    )
    return [Change("credit_publicity", e, code, new, "penalty_decided")]


def licence_issue(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """发证/换证 (e-licence library): an expired licence renewed, or a valid one re-issued."""
    day = beijing_day(when)
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, _ = found
    held = current_licences(w, e, code)
    if not held:
        return []
    expired = [lic for lic in held if lic["status"] == "过期"]
    lic = expired[0] if expired else held[r.below(len(held))]
    valid = (
        "长期" if lic["valid_until"] == "长期" else (day + dt.timedelta(days=5 * 365)).isoformat()
    )
    new = with_changes(lic, issued_on=day.isoformat(), valid_until=valid, status="有效")
    return [Change("e_licence", e, lic["licence_number"], new, "licence_issued")]


def licence_revocation(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """吊销 (e-licence library): a permit revoked; revoking the business licence itself
    also marks the enterprise revoked at market regulation."""
    del when
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    valid = [lic for lic in current_licences(w, e, code) if lic["status"] == "有效"]
    if not valid:
        return []
    permits = [lic for lic in valid if not lic["licence_number"].startswith("YZ")]
    lic = permits[0] if permits else valid[0]
    changes = [
        Change(
            "e_licence",
            e,
            lic["licence_number"],
            with_changes(lic, status="吊销"),
            "licence_revoked",
        )
    ]
    if lic["licence_number"].startswith("YZ"):
        changes.append(
            Change(
                "enterprise_registration",
                e,
                code,
                with_changes(firm, status="吊销,未注销"),
                "licence_revoked",
            )
        )
    return changes
