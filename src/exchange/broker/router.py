"""``/api/v1/exchange``: the broker's API for consumer departments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from exchange.authz.policy import REASONS
from exchange.broker.schemas import QueryAnswer, QueryRequest
from exchange.broker.service import Broker

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])

Front = Annotated[str, Path(pattern=r"^[123]\d{8}$", description="e.g. 101001001")]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", description="e.g. 000001")]

_DENIALS = "\n".join(
    f"- `client.{code}`: {text}" for code, text in REASONS.items() if code != "granted"
)
_ERRORS = f"""
Errors say on which side the fault lies (`error.detail.side`):

- caller: `client.bad_key` / `client.missing_key` (401), `client.bad_input` (400/422),
  `client.topic_not_found` (404), `client.topic_retired` (410), `client.quota_exceeded` (429),
  and the other grant denials (403):
{_DENIALS}
- provider: `provider.timeout` (504), `provider.unavailable` (502; 503 while the circuit is
  open), `provider.bad_response` (502)
- broker: `broker.audit_unavailable` (503), `broker.internal` (500)
"""


def _broker(request: Request) -> Broker:
    found: Broker = request.app.state.ctx.parts["broker"]
    return found


_QUERY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": QueryRequest.model_json_schema()}},
    }
}


@router.post(
    "/{front}/{seq}/query",
    response_model=QueryAnswer,
    openapi_extra=_QUERY_BODY,
    description=(
        "Look up to 1,000 records of a topic by key, through the broker.\n\n"
        "The broker authenticates the caller, checks its grant (items, validity, daily "
        "quota), forwards the keys to the provider's API, keeps only granted items "
        "(whatever the provider sends), counts the records against the quota, commits the "
        "audit entry and only then answers. Send `X-Exchange-Case` to name the business "
        "case the call serves; it is kept in the audit log.\n" + _ERRORS
    ),
)
async def query(request: Request, front: Front, seq: Seq) -> Response:
    """Single or batch lookup."""
    return await _broker(request).query(request, front, seq)


@router.get(
    "/{front}/{seq}/export",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    description=(
        "Stream a table-type topic as NDJSON, one record per line, granted items only.\n\n"
        "Query parameters: `offset` (default 0), `limit` (default 10,000, at most "
        "1,000,000; capped by the grant's remaining daily quota), `items` (comma-separated; "
        "default every granted item). `X-Next-Offset` gives where the next page starts. "
        "The body ends only after the audit entry is committed; a failure mid-stream "
        "aborts the transfer.\n" + _ERRORS
    ),
)
async def export(request: Request, front: Front, seq: Seq) -> Response:
    """Bulk export."""
    return await _broker(request).export(request, front, seq)
