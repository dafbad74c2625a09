"""The starting state of double publicity: the seed's totals as counts, and the grants the
joint-punishment units hold on the list topic.

The platform's mid-2020 figure is 23.67 million permit and penalty records from 37
departments and 11 districts, published at a 100 % rate. Materialising 23.67 million rows
would make every first start take many minutes, and nobody reads them one by one: the
profile stores each submitting unit's *counts* (``credit_baseline``), which the statistics
add to the live ones. Records that are queried (searched, listed, fed upward) are the real
rows submitted through the API, by the mock departments' feed (:mod:`exchange.credit.feed`)
or by a department's own system.

How the total divides among the units is this simulator's assumption: weights favouring
the large enforcement bodies (market regulation, urban management, transport, public
security, construction, environment) and the districts, and a permit share per unit drawn
from a fixed seed; the sums are exact.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.authn import OPERATOR, Principal
from exchange.authz import service as authz_service
from exchange.authz.calendar import WorkingCalendar
from exchange.authz.schemas import ApplicationCreate, Approve, Purpose, PurposeScope
from exchange.catalog.models import Topic
from exchange.credit.models import CreditBaseline
from exchange.departments.city import Rng, mix
from exchange.members.models import Department

PROFILE = "platform-2020"
TOTAL_RECORDS = 23_670_000
#: The 37 municipal departments that submit (the 51 municipal units less the offices
#: that take no permit or penalty decisions: 办公厅, 外办, 协作办, 信访局, 研究室 …).
DEPARTMENTS: tuple[str, ...] = (
    "fgw", "jyj", "kjj", "gxj", "gaj", "mzj", "sfj", "czj", "rsj", "ghzyj", "sthjj",
    "zfcxjsj", "jtj", "slj", "nyncj", "sw", "wglj", "wjw", "tyjrswj", "yjglj", "sjj", "gzw",
    "scjgj", "tyj", "tjj", "ybj", "cgzfj", "lyylj", "jrj", "zsj", "gwj", "mzzjj", "kab",
    "rfb", "lsj", "daj", "gjj",
)  # fmt: skip
#: The 11 district governments.
DISTRICTS: tuple[str, ...] = (
    "liwan", "yuexiu", "haizhu", "tianhe", "baiyun", "huangpu", "panyu", "huadu", "nansha",
    "conghua", "zengcheng",
)  # fmt: skip
SUBMITTERS = DEPARTMENTS + DISTRICTS
_HEAVY = {"scjgj": 40, "cgzfj": 25, "jtj": 20, "gaj": 20, "zfcxjsj": 12, "sthjj": 8, "wjw": 8}
_DISTRICT_WEIGHT = 10
#: Units that query the lists before their decisions (联合奖惩): the two customs and the
#: commerce bureau.
LIST_USERS: tuple[str, ...] = ("gzhg", "hphg", "sw")
LISTS_SLUG = "credit-lists"


def allocation(seed: int = 2020) -> dict[str, tuple[int, int]]:
    """(permits, penalties) per submitting unit, summing to :data:`TOTAL_RECORDS`."""
    weights = {u: _HEAVY.get(u, _DISTRICT_WEIGHT if u in DISTRICTS else 2) for u in SUBMITTERS}
    whole = sum(weights.values())
    exact = {u: TOTAL_RECORDS * w / whole for u, w in weights.items()}
    counts = {u: int(v) for u, v in exact.items()}
    # Largest remainders take the records rounding left over, so the total is exact.
    short = TOTAL_RECORDS - sum(counts.values())
    for u in sorted(exact, key=lambda u: (counts[u] - exact[u], u))[:short]:
        counts[u] += 1
    out = {}
    for u, n in counts.items():
        share = 50 + Rng(mix(seed, sum(map(ord, u)))).below(40)  # 50-89 % permits
        permits = n * share // 100
        out[u] = (permits, n - permits)
    return out


def seed_counts(session: Session, seed: int = 2020) -> int:
    """Store the profile's counts for the submitting units the database has; returns how
    many units (none when counts are there already)."""
    if session.scalar(select(func.count()).select_from(CreditBaseline)):
        return 0
    present = set(session.scalars(select(Department.code).where(Department.code.in_(SUBMITTERS))))
    rows = [
        CreditBaseline(unit=u, profile=PROFILE, permits=p, penalties=x, late=0, missing=0)
        for u, (p, x) in allocation(seed).items()
        if u in present
    ]
    session.add_all(rows)
    return len(rows)


def seed_list_grants(
    session: Session,
    *,
    now: dt.datetime,
    today: dt.date,
    calendar: WorkingCalendar,
    review_days: int,
) -> int:
    """The customs and the commerce bureau apply for the list topic, and the platform
    operator's data bureau (its provider) approves: grants with an application trail, as
    any other. Returns the grants made."""
    topic = session.scalar(select(Topic).where(Topic.slug == LISTS_SLUG))
    if topic is None:
        return 0
    items = [item["field"] for item in topic.data["items"]]
    made = 0
    for unit in LIST_USERS:
        if session.get(Department, unit) is None:
            continue
        if authz_service.current_grant(session, unit, topic.resource_code) is not None:
            continue
        app = authz_service.submit(
            session,
            ApplicationCreate(
                topic=topic.resource_code,
                items=items,
                purpose=Purpose(
                    scope=PurposeScope.administrative_basis,
                    text="联合奖惩:行政审批和通关前核查失信联合惩戒对象、守信联合激励对象",
                ),
                legal_function="《关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》(国发〔2016〕33号)",
                valid_until=dt.date(today.year + 3, 12, 31),
                consumer=unit,
            ),
            Principal(OPERATOR),
            now=now,
            today=today,
            calendar=calendar,
            review_days=review_days,
        )
        session.flush()
        authz_service.approve(
            session, app, Approve(), Principal(topic.provider), now=now, today=today
        )
        made += 1
    return made
