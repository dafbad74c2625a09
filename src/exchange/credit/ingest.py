"""Gathering (归集) the living city's permit and penalty events into double publicity.

The mock departments' living city (:mod:`exchange.departments.lifeevents`) decides permits
and penalties on the platform clock and publishes them, as changes of the data bureau's
双公示 topic (``credit-publicity``: the party's counts and latest penalty after the
change), into the distribution outbox (``distribution_event``). The credit service reads
that outbox and publishes each ``penalty_decided`` and ``permit_granted`` event as a
decision of the market regulator (``scjgj``: the city's penalty numbers are
穗市监处罚〔…〕), with what the event carries: for a penalty its document number, date,
reason and fine; for a permit only that one was granted, so its document number is made
from the event's id (穗市监许〔year〕E{id}号) and its content is generic.

Idempotent: the decision numbers are the events' own, so reading the outbox again from the
start publishes nothing twice (``duplicate``); the cursor saves the rereading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authz.calendar import BEIJING
from exchange.catalog.models import Topic
from exchange.credit import service
from exchange.credit.schemas import RecordIn, SubmitBatch
from exchange.departments.city import City
from exchange.distribution.models import ChangeEventRow
from exchange.ids import credit_code_problem
from exchange.members.models import Department

SOURCE_SLUG = "credit-publicity"
#: The unit the city's permits and penalties are published as.
UNIT = "scjgj"
KINDS = ("penalty_decided", "permit_granted")
_RECORD: TypeAdapter[Any] = TypeAdapter(RecordIn)


@dataclass
class Ingested:
    events: int
    published: int
    duplicates: int
    skipped: int
    cursor: int


def _record(event: ChangeEventRow, city: City, authority: Department) -> dict[str, Any] | None:
    rec = event.record or {}
    code, name = rec.get("credit_code"), rec.get("name")
    if not isinstance(code, str) or not name or credit_code_problem(code):
        return None
    found = city.enterprise_by_credit_code(code)
    day = event.changed_at.astimezone(BEIJING).date()
    party = {
        "party_kind": "individual_business" if code.startswith("92") else "legal_person",
        "party_name": name,
        "credit_code": code,
        "legal_representative": (found.legal_rep_name if found else None) or "未登记",
        "authority": authority.name,
        "authority_code": authority.credit_code,
    }
    if code.startswith("92"):
        party["legal_representative"] = None
    if event.kind == "penalty_decided":
        number, date = rec.get("latest_penalty_number"), rec.get("latest_penalty_date")
        if not number or not date:
            return None
        amount = rec.get("latest_penalty_amount")
        reason = rec.get("latest_penalty_reason") or "违法行为"
        return {
            **party,
            "kind": "penalty",
            "decision_number": number,
            "decision_date": date,
            "legal_basis": "《中华人民共和国行政处罚法》及相关市场监管法律法规",
            "content": f"罚款{amount}元" if amount else "警告",
            "violation_facts": reason,
            "categories": ["罚款"] if amount else ["警告"],
            "fine_amount": f"{amount}.00" if amount else None,
        }
    return {
        **party,
        "kind": "permit",
        "decision_number": f"穗市监许〔{day.year}〕E{event.id}号",
        "decision_date": day.isoformat(),
        "legal_basis": "《中华人民共和国行政许可法》第三十八条",
        "content": "行政许可(城市变更事件)",
        "category": "普通",
        "valid_from": day.isoformat(),
    }


def ingest(
    session: Session,
    *,
    city: City,
    after: int,
    limit: int,
    now: dt.datetime,
    deadlines: service.Deadlines,
) -> Ingested:
    """Publish the outbox's permit and penalty events after the cursor ``after`` (an
    event id), at most ``limit`` events; returns the counts and the new cursor."""
    topic = session.scalar(select(Topic.resource_code).where(Topic.slug == SOURCE_SLUG))
    authority = session.get(Department, UNIT)
    if topic is None or authority is None or authority.credit_code is None:
        return Ingested(0, 0, 0, 0, after)
    events: Sequence[ChangeEventRow] = session.scalars(
        select(ChangeEventRow)
        .where(ChangeEventRow.resource_code == topic, ChangeEventRow.id > after)
        .order_by(ChangeEventRow.id)
        .limit(limit)
    ).all()
    today = now.astimezone(BEIJING).date()
    records: list[Any] = []
    numbers: set[tuple[str, str]] = set()
    skipped = 0
    for event in events:
        rec = _record(event, city, authority) if event.kind in KINDS else None
        try:
            decision = None if rec is None else _RECORD.validate_python(rec)
        except ValidationError:  # an event whose record cannot make a valid decision
            decision = None
        if decision is None or decision.decision_date > today:
            skipped += 1
            continue
        key = (decision.kind, decision.decision_number)
        if key in numbers:
            skipped += 1
            continue
        numbers.add(key)
        records.append(decision)
    cursor = events[-1].id if events else after
    published = duplicates = 0
    for start in range(0, len(records), 1000):
        batch = SubmitBatch(records=records[start : start + 1000])
        answer = service.submit(session, UNIT, batch, now=now, deadlines=deadlines)
        published += answer.published
        duplicates += answer.duplicates
    return Ingested(len(events), published, duplicates, skipped, cursor)
