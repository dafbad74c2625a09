"""Exchange request and answer shapes (pydantic only, so the SDK can use them).

The broker's hot path parses and renders with orjson directly; these models document the
API (OpenAPI) and type the SDK.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_KEYS = 1000


class QueryRequest(BaseModel):
    """Single or batch lookup by key (e.g. ID numbers or credit codes)."""

    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(min_length=1, max_length=MAX_KEYS, description="Lookup keys.")
    items: list[str] | None = Field(
        default=None, description="Items wanted; default: every item the grant holds."
    )


class QueryAnswer(BaseModel):
    """Records carry only granted items, whatever the provider sent."""

    request_id: str
    records: list[dict[str, Any]]
    not_found: list[str]
    invalid: list[dict[str, Any]] | None = Field(
        default=None, description="Keys the provider rejected as malformed (when any)."
    )


# -- verification (核验) ----------------------------------------------------------------------

MAX_CHECKS = 1000
MAX_CLAIMS = 100

#: A claimed value: a string, number or boolean, or a range ``{"min": …, "max": …}`` on
#: an integer, decimal, date or datetime item.
ClaimValue = str | int | float | bool | dict[str, str | int | float]

Outcome = Literal["match", "mismatch", "unknown"]
KeyStatus = Literal["found", "not_found", "invalid_key"]


class VerifyRequest(BaseModel):
    """Does the source hold these values for this key? (one key)"""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, description="The record's key.")
    claims: dict[str, ClaimValue] = Field(
        min_length=1,
        max_length=MAX_CLAIMS,
        description="Item → claimed value (or range), e.g. "
        '{"registered_address": "广州市天河区…", "contribution_base": {"min": 5000, "max": 8000}}.',
    )


class VerifyBatchRequest(BaseModel):
    """Several keys and their claims in one call."""

    model_config = ConfigDict(extra="forbid")

    checks: list[VerifyRequest] = Field(min_length=1, max_length=MAX_CHECKS)


class VerifyResult(BaseModel):
    """The outcome per claimed item of one key: never the value."""

    key: str
    status: KeyStatus = Field(
        description="found; not_found (no record for the key); invalid_key (the provider "
        "rejected it as malformed)."
    )
    outcomes: dict[str, Outcome] = Field(
        description="match / mismatch / unknown (no record, or no value for the item)."
    )


class VerifyAnswer(VerifyResult):
    """The answer to a one-key verification."""

    request_id: str


class VerifyBatchAnswer(BaseModel):
    """The answer to a batch, one result per check in the order sent."""

    request_id: str
    results: list[VerifyResult]
    summary: dict[Outcome, int] = Field(description="Claims answered with each outcome.")
