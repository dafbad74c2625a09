"""Exchange request and answer shapes (pydantic only, so the SDK can use them).

The broker's hot path parses and renders with orjson directly; these models document the
API (OpenAPI) and type the SDK.
"""

from __future__ import annotations

from typing import Any

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
