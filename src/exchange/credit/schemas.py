"""Credit records as submitters, the public and list users see them. Imports only pydantic.

The submitted fields follow the national double-publicity data standard (《行政许可和行政处罚
等信用信息数据归集标准》): the party (行政相对人) and its identifiers, the decision's document
number, legal basis, content, date and deciding authority; a permit's category, licence
number and validity; a penalty's categories (《行政处罚法》 art. 9), facts, fine and
confiscated amounts.

What the public view leaves out (:class:`PublicRecord`): a natural person's or a legal
representative's ID number is masked to its first 6 and last 4 characters
(``440106********0014``); whether a penalty was marked major, the submission deadline and
lateness are the platform's own bookkeeping; penalties past their publicity period are not
shown at all (``exchange.credit.rules.PUBLICITY``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from exchange.fields import Text

CREDIT_CODE = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
CreditCode = Annotated[str, StringConstraints(pattern=CREDIT_CODE)]
IdNumber = Annotated[str, StringConstraints(pattern=r"^\d{17}[\dX]$")]
DecisionNumber = Annotated[
    Text, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)
]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
#: Yuan, to the fen; at most ten billion yuan.
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("10000000000"), decimal_places=2)]
MAX_BATCH = 1000


class PartyKind(StrEnum):
    """行政相对人类别."""

    legal_person = "legal_person"  # 法人及非法人组织
    natural_person = "natural_person"  # 自然人
    individual_business = "individual_business"  # 个体工商户


class PermitCategory(StrEnum):
    """许可类别."""

    ordinary = "普通"
    franchise = "特许"
    recognition = "认可"
    approval = "核准"
    registration = "登记"
    other = "其他"


class PenaltyCategory(StrEnum):
    """处罚类别: the kinds of 《行政处罚法》 (2021) article 9."""

    warning = "警告"
    criticism = "通报批评"
    fine = "罚款"
    confiscate_gains = "没收违法所得"
    confiscate_property = "没收非法财物"
    suspend_licence = "暂扣许可证件"
    lower_qualification = "降低资质等级"
    revoke_licence = "吊销许可证件"
    restrict_business = "限制开展生产经营活动"
    suspend_business = "责令停产停业"
    close = "责令关闭"
    restrict_practice = "限制从业"
    detention = "行政拘留"
    other = "其他"


class RecordKind(StrEnum):
    permit = "permit"
    penalty = "penalty"


class _Decision(BaseModel):
    """What permits and penalties share."""

    model_config = ConfigDict(extra="forbid")

    decision_number: DecisionNumber = Field(description="决定文书号, e.g. 穗市监处罚〔2026〕12号")
    party_kind: PartyKind = Field(description="行政相对人类别")
    party_name: Name = Field(description="行政相对人名称")
    credit_code: CreditCode | None = Field(
        default=None,
        description="统一社会信用代码; required unless the party is a natural person.",
    )
    legal_representative: Name | None = Field(
        default=None, description="法定代表人 (legal persons: required)"
    )
    id_number: IdNumber | None = Field(
        default=None,
        description="证件号码 (resident ID): required for a natural person; the legal "
        "representative's otherwise (optional). Masked in the public view.",
    )
    legal_basis: LongText = Field(description="法律依据 / 处罚依据")
    content: LongText = Field(description="许可内容 / 处罚内容")
    decision_date: dt.date = Field(
        description="决定日期 (Beijing); the 7 working days run from it."
    )
    authority: Name = Field(description="许可机关 / 处罚机关")
    authority_code: CreditCode = Field(description="The authority's unified social credit code.")

    @model_validator(mode="after")
    def _party(self) -> _Decision:
        if self.party_kind is PartyKind.natural_person:
            if self.id_number is None:
                raise ValueError("id_number: a natural person is identified by an ID number")
        elif self.credit_code is None:
            raise ValueError(f"credit_code: required for a party of kind {self.party_kind}")
        if self.party_kind is PartyKind.legal_person and self.legal_representative is None:
            raise ValueError("legal_representative: required for a legal person")
        return self


class PermitIn(_Decision):
    """One administrative permit decision (行政许可)."""

    kind: Literal["permit"] = "permit"
    category: PermitCategory = Field(description="许可类别")
    licence_number: Annotated[Text, StringConstraints(max_length=100)] | None = Field(
        default=None, description="许可编号 (the certificate's number, if any)"
    )
    valid_from: dt.date = Field(description="有效期自")
    valid_until: dt.date | None = Field(default=None, description="有效期至 (omit: no end)")

    @model_validator(mode="after")
    def _validity(self) -> PermitIn:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until: before valid_from")
        return self


class PenaltyIn(_Decision):
    """One administrative penalty decision (行政处罚)."""

    kind: Literal["penalty"] = "penalty"
    categories: Annotated[list[PenaltyCategory], Field(min_length=1, max_length=14)] = Field(
        description="处罚类别 (one or more)"
    )
    violation_facts: LongText = Field(description="违法事实")
    fine_amount: Amount | None = Field(default=None, description="罚款金额 (yuan)")
    confiscated_amount: Amount | None = Field(
        default=None, description="没收违法所得、没收非法财物的金额 (yuan)"
    )
    major: bool = Field(
        default=False,
        description="重大行政处罚 (decided after legal review or a hearing); counts toward "
        "the black list.",
    )

    @model_validator(mode="after")
    def _amounts(self) -> PenaltyIn:
        if PenaltyCategory.fine in self.categories and self.fine_amount is None:
            raise ValueError("fine_amount: required when the categories include 罚款")
        if PenaltyCategory.fine not in self.categories and self.fine_amount:
            raise ValueError("fine_amount: given but 罚款 is not among the categories")
        return self


RecordIn = Annotated[PermitIn | PenaltyIn, Field(discriminator="kind")]


class SubmitBatch(BaseModel):
    """Body of ``POST /api/v1/credit/records``: up to 1,000 decisions of the calling unit."""

    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[RecordIn], Field(min_length=1, max_length=MAX_BATCH)]


class SubmitOutcome(StrEnum):
    published = "published"
    duplicate = "duplicate"  # the unit already submitted this decision number


class SubmitResult(BaseModel):
    kind: RecordKind
    decision_number: str
    id: int
    outcome: SubmitOutcome
    due_at: dt.datetime = Field(description="End of the 7th working day after the decision.")
    late: bool


class SubmitAnswer(BaseModel):
    published: int
    duplicates: int
    late: int
    results: list[SubmitResult]


class NoticeIn(BaseModel):
    """A decision made, announced by the unit's business system (应公示清单)."""

    model_config = ConfigDict(extra="forbid")

    kind: RecordKind
    decision_number: DecisionNumber
    decision_date: dt.date


class NoticeBatch(BaseModel):
    """Body of ``POST /api/v1/credit/notices``."""

    model_config = ConfigDict(extra="forbid")

    notices: Annotated[list[NoticeIn], Field(min_length=1, max_length=MAX_BATCH)]


class NoticeAnswer(BaseModel):
    recorded: int
    already_known: int


class PublicRecord(BaseModel):
    """A published decision as the public portal shows it (see the module docstring)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: RecordKind
    submitter: str
    decision_number: str
    party_kind: PartyKind
    party_name: str
    credit_code: str | None
    legal_representative: str | None
    id_number_masked: str | None
    category: str
    legal_basis: str
    content: str
    violation_facts: str | None
    fine_amount: Decimal | None
    confiscated_amount: Decimal | None
    licence_number: str | None
    valid_from: dt.date | None
    valid_until: dt.date | None
    decision_date: dt.date
    authority: str
    authority_code: str
    published_at: dt.datetime


class SubmittedRecord(PublicRecord):
    """A decision as its submitter (or the operator) sees it: nothing masked."""

    id_number: str | None
    major: bool
    due_at: dt.datetime
    late: bool


class PublicPage(BaseModel):
    items: list[PublicRecord]
    total: int
    offset: int
    limit: int


class SubmittedPage(BaseModel):
    items: list[SubmittedRecord]
    total: int
    offset: int
    limit: int


class UnitStats(BaseModel):
    """One unit's double-publicity figures (baseline counts of the profile included)."""

    unit: str
    permits: int
    penalties: int
    published: int = Field(description="permits + penalties published")
    late: int = Field(description="published after their deadline")
    missing: int = Field(description="announced decisions past their deadline, unpublished")
    pending: int = Field(description="announced decisions not yet published, still in time")
    publication_rate: float = Field(description="published / (published + missing)")
    on_time_rate: float = Field(description="(published - late) / (published + missing)")


class StatsOut(BaseModel):
    units: list[UnitStats]
    total: UnitStats = Field(description="Every unit together (unit: '*').")
    submitting_units: int


class ListName(StrEnum):
    black = "black"  # 失信联合惩戒对象名单
    red = "red"  # 守信联合激励对象名单


class SourceRecord(BaseModel):
    """A decision a list rule rests on."""

    id: int | None = Field(description="The published record's id (None: baseline history).")
    kind: RecordKind
    submitter: str
    decision_number: str
    decision_date: dt.date
    category: str
    authority: str
    fine_amount: Decimal | None
    major: bool


class RuleHit(BaseModel):
    rule: str = Field(description="Stable code, e.g. major_penalty")
    reason: str
    until: dt.date | None = Field(description="Last day on the list by this rule.")
    records: list[SourceRecord]


class ListMembership(BaseModel):
    name: ListName
    rules: list[RuleHit]


class ListAnswer(BaseModel):
    credit_code: str
    lists: list[ListMembership] = Field(description="Empty: on neither list.")


class ListQuery(BaseModel):
    """Body of ``POST /api/v1/credit/lists/query``."""

    model_config = ConfigDict(extra="forbid")

    credit_codes: Annotated[list[CreditCode], Field(min_length=1, max_length=MAX_BATCH)]


class ListBatch(BaseModel):
    as_of: dt.date = Field(description="The platform day the rules were applied on.")
    results: list[ListAnswer]


class IngestAnswer(BaseModel):
    """What one gathering pass over the distribution outbox did."""

    events: int = Field(description="Outbox events read after the cursor.")
    published: int
    duplicates: int
    skipped: int = Field(description="Events of other kinds, or not a valid decision.")
    cursor: int = Field(description="Pass as after= to continue.")
