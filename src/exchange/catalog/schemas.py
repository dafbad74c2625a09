"""Catalog metadata: the 13 core fields of the national catalog guide (GB/T 21063 style).

Imports only pydantic (and the standard library) so the SDK, the loader of ``catalog/``
files and Locust can use it without the server's dependencies.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from exchange.fields import Text

CATEGORY_PATTERN = r"^[123]\d{8}$"
SEQUENCE_PATTERN = r"^\d{6}$"
RESOURCE_CODE_PATTERN = r"^[123]\d{8}/\d{6}$"
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ELEMENT_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
UNIT_CODE_PATTERN = r"^[a-z][a-z0-9_-]{1,31}$"

UnitCode = Annotated[str, StringConstraints(pattern=UNIT_CODE_PATTERN)]
ResourceCode = Annotated[str, StringConstraints(pattern=RESOURCE_CODE_PATTERN)]
# Free-text attributes (conditions, legal basis): stored in the topic's JSON document.
Clause = Annotated[Text, StringConstraints(max_length=2000)]
Tag = Annotated[Text, StringConstraints(min_length=1, max_length=40)]
Tags = Annotated[list[Tag], Field(max_length=50)]
Related = Annotated[list[ResourceCode], Field(max_length=100)]
Format = Annotated[Text, StringConstraints(max_length=40)]


class SharingType(StrEnum):
    """无条件共享 / 有条件共享 / 不予共享. Ordered from most to least open."""

    unconditional = "unconditional"
    conditional = "conditional"
    not_shared = "not_shared"

    @property
    def rank(self) -> int:
        return _SHARING_RANK[self]


_SHARING_RANK = {
    SharingType.unconditional: 0,
    SharingType.conditional: 1,
    SharingType.not_shared: 2,
}


class Classification(StrEnum):
    """类: 1 basic (基础), 2 thematic (主题), 3 departmental (部门)."""

    basic = "basic"
    thematic = "thematic"
    departmental = "departmental"


CLASSIFICATION_DIGIT = {
    "1": Classification.basic,
    "2": Classification.thematic,
    "3": Classification.departmental,
}


class CatalogGroup(StrEnum):
    """The Guangzhou catalog's three groups: 基础信息 / 部门信息 / 专项信息."""

    basic = "basic"
    departmental = "departmental"
    special = "special"


class ResourceType(StrEnum):
    """接口 / 库表 / 文件."""

    interface = "interface"
    table = "table"
    file = "file"


class UpdateCycle(StrEnum):
    """不定时 / 实时 / 每日 / 每周 / 每月 / 每季度 / 每半年 / 每年."""

    irregular = "irregular"
    realtime = "realtime"
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    semiannual = "semiannual"
    annual = "annual"


class DeliveryMethod(StrEnum):
    """系统对接(接口查询) / 前置机共享 / 在线查询 / 批量下载."""

    interface = "interface"
    front_end_processor = "front_end_processor"
    online_query = "online_query"
    bulk_download = "bulk_download"


class UsageScope(StrEnum):
    """作为行政依据 / 工作参考 / 数据校核 / 业务协同."""

    administrative_basis = "administrative_basis"
    work_reference = "work_reference"
    data_verification = "data_verification"
    business_collaboration = "business_collaboration"


class DataType(StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    binary = "binary"


class OpenType(StrEnum):
    """Open-to-public attribute: 无条件开放 / 有条件开放 / 不予开放."""

    open = "open"
    conditional = "conditional"
    closed = "closed"


class TopicStatus(StrEnum):
    published = "published"
    retired = "retired"


class DataItem(BaseModel):
    """信息项: one data item of a topic, with its own sharing type."""

    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, StringConstraints(pattern=FIELD_PATTERN)] = Field(
        description="Machine name of the item in exchanged records, e.g. id_number."
    )
    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Item name as the catalog shows it, e.g. 公民身份号码."
    )
    data_type: DataType = DataType.string
    description: Annotated[Text, StringConstraints(max_length=1000)] = ""
    sharing_type: SharingType
    element: Annotated[str, StringConstraints(pattern=ELEMENT_PATTERN, max_length=120)] | None = (
        Field(
            default=None,
            description="Standard data element carried, e.g. person.id_number (一数一源).",
        )
    )
    is_source: bool = Field(
        default=True,
        description="True when this topic is the element's source; False to re-share it.",
    )
    is_key: bool = Field(default=False, description="Records are looked up by this item.")
    verifiable: bool = Field(
        default=False,
        description="The provider lets any member unit verify a claimed value of this item "
        "(核验: the exchange answers match / mismatch / unknown, never the value), even "
        "without a grant for it: typically an item it does not share.",
    )


class SharingAttributes(BaseModel):
    """共享属性: type, conditions, legal basis of refusal, delivery methods."""

    model_config = ConfigDict(extra="forbid")

    type: SharingType
    conditions: Clause | None = Field(
        default=None, description="共享条件; required if conditional."
    )
    legal_basis: Clause | None = Field(
        default=None, description="不予共享依据 (law, regulation or central policy)."
    )
    methods: list[DeliveryMethod] = Field(
        default_factory=lambda: [DeliveryMethod.interface], max_length=len(DeliveryMethod)
    )
    usage_scopes: list[UsageScope] = Field(
        max_length=len(UsageScope),
        default_factory=lambda: [UsageScope.data_verification, UsageScope.work_reference],
    )


class OpenAttributes(BaseModel):
    """开放属性."""

    model_config = ConfigDict(extra="forbid")

    type: OpenType = OpenType.closed
    conditions: Clause | None = None


def _check_sharing(sharing: SharingAttributes | None, items: list[DataItem] | None) -> None:
    """The rules that tie a topic's sharing attributes and its items together."""
    if sharing is not None:
        if sharing.type is SharingType.conditional and not (sharing.conditions or "").strip():
            raise ValueError("sharing.conditions: a conditional topic must state its conditions")
        if sharing.type is SharingType.not_shared and not (sharing.legal_basis or "").strip():
            raise ValueError(
                "sharing.legal_basis: a not-shared topic must cite a law, administrative "
                "regulation or central policy"
            )
    if items is not None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.field in seen:
                raise ValueError(f"items.{i}.field: duplicate item field {item.field!r}")
            seen.add(item.field)
        if sharing is not None:
            for i, item in enumerate(items):
                # An item may be less open than its topic, never more open.
                if item.sharing_type.rank < sharing.type.rank:
                    raise ValueError(
                        f"items.{i}.sharing_type: item {item.field!r} is {item.sharing_type} "
                        f"but the topic is {sharing.type}; an item cannot be more open "
                        "than its topic"
                    )
            if sharing.type is not SharingType.not_shared and all(
                it.sharing_type is SharingType.not_shared for it in items
            ):
                raise ValueError(
                    "items: every item is not_shared, so the topic must be not_shared too"
                )


class TopicBase(BaseModel):
    """Fields a registrant supplies (the catalog assigns code, version and dates)."""

    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)] = Field(
        description="Front part of the resource code: 类1 项2 目3 细目3, e.g. 101001001."
    )
    group: CatalogGroup = Field(description="Guangzhou catalog group.")
    name: Annotated[Text, StringConstraints(min_length=2, max_length=200)]
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$")] | None = Field(
        default=None, description="Stable machine name, e.g. household-registration."
    )
    provider: UnitCode = Field(description="Code of the providing (source) department.")
    abstract: Annotated[Text, StringConstraints(min_length=1, max_length=4000)]
    format: Format = Field(default="JSON", description="e.g. JSON, CSV, PDF.")
    resource_type: ResourceType
    items: Annotated[list[DataItem], Field(min_length=1, max_length=500)]
    sharing: SharingAttributes
    open: OpenAttributes = Field(default_factory=OpenAttributes)
    update_cycle: UpdateCycle
    published_on: dt.date | None = Field(default=None, description="Defaults to today.")
    related: Related = Field(default_factory=list)
    api_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/_.~-]*$")] | None = Field(
        default=None,
        description="Path of the topic's API under the provider's base URL, e.g. "
        "/topics/household-registration.",
    )
    tags: Tags = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> TopicBase:
        _check_sharing(self.sharing, self.items)
        return self


class TopicCreate(TopicBase):
    """Body of ``POST /api/v1/catalog/topics``."""


class TopicChange(BaseModel):
    """Body of ``PATCH``: any subset of the registrant's fields, and why."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, StringConstraints(min_length=2, max_length=200)] | None = None
    abstract: Annotated[Text, StringConstraints(min_length=1, max_length=4000)] | None = None
    format: Format | None = None
    resource_type: ResourceType | None = None
    group: CatalogGroup | None = None
    items: Annotated[list[DataItem], Field(min_length=1, max_length=500)] | None = None
    sharing: SharingAttributes | None = None
    open: OpenAttributes | None = None
    update_cycle: UpdateCycle | None = None
    related: Related | None = None
    api_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/_.~-]*$")] | None = None
    tags: Tags | None = None
    reason: Annotated[Text, StringConstraints(max_length=1000)] = Field(
        default="", description="Why the topic changed."
    )

    @model_validator(mode="after")
    def _rules(self) -> TopicChange:
        _check_sharing(self.sharing, self.items)
        return self


class TopicRetire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Text, StringConstraints(min_length=1, max_length=1000)]


class TopicVersionOut(BaseModel):
    version: int
    changed_at: dt.datetime
    changed_by: str
    reason: str
    changes: dict[str, Any]


class TopicOut(TopicBase):
    """A topic as the catalog returns it."""

    model_config = ConfigDict(extra="ignore")

    resource_code: str
    sequence: str
    classification: Classification
    provider_name: str
    provider_code: str = Field(description="The provider's unified social credit code.")
    status: TopicStatus
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    retired_at: dt.datetime | None = None
    retire_reason: str | None = None
    history: list[TopicVersionOut] | None = None


class TopicPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[TopicOut]


class ChangeOut(BaseModel):
    """One entry of the catalog's change feed."""

    cursor: int
    at: dt.datetime
    kind: str = Field(description="registered | changed | retired")
    resource_code: str
    version: int
    by: str
    changes: dict[str, Any] = Field(default_factory=dict)


class ChangePage(BaseModel):
    changes: list[ChangeOut]
    next_cursor: int


def classification_of(category: str) -> Classification:
    """类 from the first digit of the resource code's front part."""
    return CLASSIFICATION_DIGIT[category[0]]


def split_code(code: str) -> tuple[str, str]:
    """``101001001/000001`` → (front, seq); raises ValueError if malformed."""
    if not re.fullmatch(RESOURCE_CODE_PATTERN, code):
        raise ValueError(f"not a resource code: {code!r}")
    front, seq = code.split("/")
    return front, seq
