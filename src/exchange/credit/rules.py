"""The rules of double publicity, pure (no I/O): the submission deadline, how long a penalty
stays public, and red and black list membership.

**Deadline.** A decision is due on the platform by the end (24:00 Beijing) of the 7th
working day after its decision date, counted with the working-day calendar the review
deadlines use (:mod:`exchange.authz.calendar`): a submission after that is *late*, a
decision announced (:class:`~exchange.credit.models.CreditNotice`) and never submitted by
then is *missing*.

**Publicity period** (NDRC 2021, 《失信行为纠正后的信用信息修复管理办法(试行)》): a penalty
of a warning or criticism only, or a fine under ¥10,000 without another measure, is public
for 3 months; a major penalty (see below) for 3 years; any other for 1 year. Permits stay
public.

**Black list** (失信联合惩戒对象, this simulator's rules, each over the penalties decided
within its window before the day asked):

* ``major_penalty``: a penalty marked major (重大行政处罚) or of a category that stops the
  business (责令停产停业, 责令关闭, 吊销许可证件, 限制开展生产经营活动, 限制从业), within
  3 years; listed until 3 years after the latest such decision;
* ``large_fine``: a fine plus confiscation of ¥100,000 or more in one decision, within 3
  years; until 3 years after the latest;
* ``repeated``: 3 or more penalties within 2 years; until 2 years after the third latest
  (when fewer than 3 remain inside the window).

**Red list** (守信联合激励对象): ``a_taxpayer``: the tax bureau rates the party A (纳税信用
A级) and it has no penalty within 3 years and is on no black list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from exchange.authz.calendar import WorkingCalendar, day_end

#: Working days a unit has to publish a decision.
SUBMIT_DAYS = 7
#: Penalty categories that stop or restrict the business: always a major penalty.
STOPPING = frozenset(
    {"责令停产停业", "责令关闭", "吊销许可证件", "限制开展生产经营活动", "限制从业"}
)
LIGHT = frozenset({"警告", "通报批评"})
#: Fen: ¥100,000 in one decision puts the party on the black list.
LARGE_FINE_FEN = 100_000_00
#: Fen: a fine under ¥10,000 is a light penalty.
LIGHT_FINE_FEN = 10_000_00
MAJOR_YEARS = 3
REPEAT_YEARS = 2
REPEAT_COUNT = 3
RED_CLEAN_YEARS = 3


def due_at(calendar: WorkingCalendar, decision_date: dt.date) -> dt.datetime:
    """End of the 7th working day after the decision (UTC). Raises ``CalendarNotCovered``
    for a year no holiday schedule covers."""
    return day_end(calendar.add_working_days(decision_date, SUBMIT_DAYS))


@lru_cache(maxsize=4096)
def years_after(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` later (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True, slots=True)
class Penalty:
    """What the list rules need of one penalty decision."""

    ref: int  # index into the caller's list of source records
    decision_date: dt.date
    categories: frozenset[str]
    fine_fen: int  # fine plus confiscation
    major: bool

    @property
    def is_major(self) -> bool:
        return self.major or bool(self.categories & STOPPING)


def publicity_until(p: Penalty) -> dt.date:
    """Last day a penalty is shown to the public."""
    if p.is_major:
        return years_after(p.decision_date, 3)
    if p.categories <= LIGHT or (p.categories <= LIGHT | {"罚款"} and p.fine_fen < LIGHT_FINE_FEN):
        return p.decision_date + dt.timedelta(days=91)
    return years_after(p.decision_date, 1)


@dataclass(slots=True)
class Hit:
    rule: str
    reason: str
    until: dt.date | None
    refs: list[int] = field(default_factory=list)


def black_list(penalties: Sequence[Penalty], today: dt.date) -> list[Hit]:
    """The black-list rules that hold on ``today`` (empty: not on the list)."""
    hits: list[Hit] = []
    if not penalties:
        return hits
    recent = sorted(
        (p for p in penalties if p.decision_date <= today), key=lambda p: p.decision_date
    )
    major_from = years_after(today, -MAJOR_YEARS)
    major = [p for p in recent if p.is_major and p.decision_date > major_from]
    if major:
        hits.append(
            Hit(
                "major_penalty",
                f"重大行政处罚 {len(major)} 项(近{MAJOR_YEARS}年)",
                years_after(major[-1].decision_date, MAJOR_YEARS),
                [p.ref for p in major],
            )
        )
    large = [p for p in recent if p.fine_fen >= LARGE_FINE_FEN and p.decision_date > major_from]
    if large:
        top = max(p.fine_fen for p in large) / 100
        hits.append(
            Hit(
                "large_fine",
                f"单次罚没金额 ≥ {LARGE_FINE_FEN // 100:,} 元"
                f"(最高 {top:,.2f} 元,近{MAJOR_YEARS}年)",
                years_after(large[-1].decision_date, MAJOR_YEARS),
                [p.ref for p in large],
            )
        )
    repeat_from = years_after(today, -REPEAT_YEARS)
    window = [p for p in recent if p.decision_date > repeat_from]
    if len(window) >= REPEAT_COUNT:
        hits.append(
            Hit(
                "repeated",
                f"{REPEAT_YEARS}年内受行政处罚 {len(window)} 次(≥ {REPEAT_COUNT})",
                years_after(window[-REPEAT_COUNT].decision_date, REPEAT_YEARS),
                [p.ref for p in window],
            )
        )
    return hits


def red_list(
    tax_rating: str | None, penalties: Sequence[Penalty], today: dt.date, *, black: bool
) -> list[Hit]:
    """The red-list rule, if it holds on ``today``."""
    if tax_rating != "A" or black:
        return []
    clean_from = years_after(today, -RED_CLEAN_YEARS)
    if any(clean_from < p.decision_date <= today for p in penalties):
        return []
    return [
        Hit(
            "a_taxpayer",
            f"纳税信用A级,且近{RED_CLEAN_YEARS}年无行政处罚",
            None,
        )
    ]
