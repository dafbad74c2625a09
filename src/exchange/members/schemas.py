"""Member units as callers and files see them. Imports only pydantic."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from exchange.fields import Text

UNIT_CODE_PATTERN = r"^[a-z][a-z0-9_-]{1,31}$"
CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
BaseUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00]+$", max_length=500)]


class DepartmentKind(StrEnum):
    """What kind of member unit a department is."""

    municipal = "municipal"  # 市政府工作部门 and directly affiliated bodies
    district = "district"  # 区人民政府 and district bureaus
    utility = "utility"  # 水、电、燃气
    provincial = "provincial"  # the provincial platform (省政务大数据中心)
    vertical = "vertical"  # central/provincial vertical bodies in the city (税务, 海关 …)
    institution = "institution"  # public institutions (事业单位), courts, procuratorate
    financial = "financial"  # banks and insurers connected for verification
    # Member units of a province-level exchange (EXCHANGE_LEVEL=province):
    provincial_dept = "provincial_dept"  # 省直部门, e.g. 广东省市场监督管理局
    city_platform = "city_platform"  # a city's sharing platform, provider of its catalogs


#: Member units that are government departments (政务部门: government bodies, and public
#: institutions and bodies exercising public functions by law). Unconditional sharing
#: (无条件共享) is for them: "any government department may use it". Banks, insurers and
#: utilities are connected members but not departments; the provider reviews what they
#: apply for, as it reviews conditional items.
GOVERNMENT_KINDS = frozenset(
    {
        DepartmentKind.municipal,
        DepartmentKind.district,
        DepartmentKind.provincial,
        DepartmentKind.vertical,
        DepartmentKind.institution,
        DepartmentKind.provincial_dept,
        DepartmentKind.city_platform,
    }
)


class DepartmentCreate(BaseModel):
    """Body of ``POST /api/v1/departments`` and one entry of ``catalog/units.yaml``."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=UNIT_CODE_PATTERN)] = Field(
        description="Short stable code used in URLs and keys, e.g. gaj (公安局)."
    )
    name: Annotated[Text, StringConstraints(min_length=2, max_length=100)]
    short_name: Annotated[Text, StringConstraints(max_length=40)] | None = Field(
        default=None, description="e.g. 市公安局"
    )
    kind: DepartmentKind
    credit_code: Annotated[str, StringConstraints(pattern=CREDIT_CODE_PATTERN)] | None = Field(
        default=None, description="Unified social credit code: the catalog's provider code."
    )
    area_code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] = "440100"
    base_url: BaseUrl | None = Field(
        default=None, description="Base URL of the department's API the broker routes to."
    )


class DepartmentUpdate(BaseModel):
    """Body of ``PATCH``: the fields to change. ``short_name`` and ``base_url`` may be
    cleared with ``null``; ``name`` and ``active`` always hold a value."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, StringConstraints(min_length=2, max_length=100)] | None = None
    short_name: Annotated[Text, StringConstraints(max_length=40)] | None = None
    base_url: BaseUrl | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> DepartmentUpdate:
        # Omitted means "unchanged"; an explicit null would blank a NOT NULL column.
        for name in ("name", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: may not be null (omit it to leave it unchanged)")
        return self


class DepartmentOut(BaseModel):
    code: str
    name: str
    short_name: str | None
    kind: DepartmentKind
    credit_code: str | None
    area_code: str
    base_url: str | None
    active: bool
    created_at: dt.datetime


class DepartmentCreated(DepartmentOut):
    api_key: str = Field(description="Shown once; only its hash is stored.")
    provider_credential: str = Field(
        description="The secret the exchange signs its calls to this unit's API with; the "
        "unit verifies them with it (README: Provider authentication)."
    )


class ProviderCredential(BaseModel):
    """What a provider needs to verify the exchange's calls to its API."""

    code: str = Field(description="The provider's code: the signature's audience.")
    credential: str = Field(description="HMAC-SHA256 key (its UTF-8 bytes); keep it secret.")
    algorithm: str = "HMAC-SHA256"
    header: str = "X-Exchange-Signature"
    window_seconds: int = Field(description="How far a call's timestamp may be from now.")


class Identity(BaseModel):
    """Who a key belongs to: a department, or the platform operator (not a department)."""

    code: str = Field(description="The department's code, or ``operator``.")
    name: str = Field(description="Short name for display (市公安局, 平台运营方).")
    operator: bool


class KeyRotated(BaseModel):
    code: str
    api_key: str
