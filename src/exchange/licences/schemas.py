"""Request and answer shapes of the licence API (pydantic only, so the SDK can use them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HolderKind = Literal["person", "legal_person"]
#: ``valid`` and ``revoked`` are stored; ``expired`` is computed on the platform clock.
LicenceStatus = Literal["valid", "revoked", "expired"]
ItemValue = str | int
NUMBER = r"^[A-Z0-9]{29,35}$"


class ItemOut(BaseModel):
    field: str
    name: str
    data_type: Literal["string", "integer", "date"]
    required: bool


class LicenceTypeOut(BaseModel):
    """One licence type (证照类型) of the catalog."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    issuer: str = Field(description="Code of the issuing department (发证部门).")
    holder_kind: HolderKind
    items: list[ItemOut] = Field(description="The licence's items (照面信息项).")
    validity_years: int | None = Field(description="Years a licence is valid; null: 长期.")
    online: bool = Field(description="Issued online through the platform (已上线).")
    starting_count: int = Field(
        description="Licences of the type issued before the platform's records begin (the profile)."
    )


class LicenceTypePage(BaseModel):
    items: list[LicenceTypeOut]
    total: int
    limit: int
    offset: int


class IssueRequest(BaseModel):
    """What an issuing department's system sends to issue one licence (发证)."""

    model_config = ConfigDict(extra="forbid")

    type_code: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,7}$", description="e.g. JHZ 结婚证")
    holder_id: str = Field(
        min_length=18,
        max_length=18,
        description="The holder's resident ID number (person) or unified social credit "
        "code (legal person), as the type's holder kind says.",
    )
    holder_name: str = Field(min_length=1, max_length=200)
    content: dict[str, ItemValue] = Field(
        description="The licence's items by field name; dates as YYYY-MM-DD."
    )
    issued_on: dt.date | None = Field(
        default=None, description="Day of issue (default: the platform's today)."
    )
    external_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The issuing system's own reference (业务流水号): issuing again with the "
        "same reference returns the licence already issued instead of a second one.",
    )


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, description="Why (e.g. 注销登记).")


class LicenceOut(BaseModel):
    """A licence as the platform keeps it, with its verification code (核验码)."""

    number: str
    type_code: str
    type_name: str
    issuer: str
    holder_kind: HolderKind
    holder_id: str
    holder_name: str
    content: dict[str, Any]
    issued_on: dt.date
    valid_until: dt.date | None
    issued_at: dt.datetime
    status: LicenceStatus
    revoked_at: dt.datetime | None
    revoke_reason: str | None
    code: str = Field(description="The verification code: what the licence's QR code carries.")


class LicencePage(BaseModel):
    items: list[LicenceOut]
    total: int
    limit: int
    offset: int


class HolderLicences(BaseModel):
    """A holder's licences, each with the e-licence topic's items the caller is granted."""

    holder_id: str
    licences: list[dict[str, Any]]
    items: list[str] = Field(description="The granted items each licence carries.")


class UseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(
        min_length=1, max_length=200, description="The business case the licence is used for."
    )


class StatusListOut(BaseModel):
    """The signed status list: ``body`` is canonical JSON, ``signature`` Ed25519 (hex) over
    ``b"exchange licence status v1\\n" + body``."""

    body: str
    signature: str


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=4000)
    content: dict[str, ItemValue] | None = Field(
        default=None, description="The items of the presented document, to compare too."
    )


class VerifyOut(BaseModel):
    ok: bool
    reason: str = Field(
        description="One of: valid, malformed, unknown_key, altered, number_mismatch, "
        "content_altered, revoked, expired."
    )
    message: str
    licence: dict[str, Any] | None
    revocation: dict[str, str] | None
    status_as_of: dt.datetime | None
    stale: bool


class TypeCount(BaseModel):
    code: str
    name: str
    issuer: str
    starting: int
    issued: int
    revoked: int
    total: int


class LicenceStats(BaseModel):
    """Counts: the profile's starting state plus what was issued through the platform."""

    as_of: dt.date = Field(description="Date of the profile's starting state.")
    types: int
    online: int
    issuers: int
    starting: int
    issued: int = Field(description="Licences issued through the platform since.")
    revoked: int
    total: int
    by_type: list[TypeCount] = Field(description="The types with the most licences first.")
