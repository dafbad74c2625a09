"""The OpenAPI document: the Bearer scheme and the error answers each operation can give.

FastAPI documents a route's success answer and a 422 in its own validation shape; the
exchange answers every error in one model (:class:`exchange.errors.ErrorBody`) and every
route but the public ones needs a key. Writing that on each of ~40 routes by hand would
drift, so it is derived here once, from what each operation is: public or not, with a body
or not, reading or changing, one of the broker's exchange endpoints or not.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from exchange.errors import ErrorBody

__all__ = ["PUBLIC", "error_statuses", "install_openapi"]

#: What a route passes as ``openapi_extra`` when it is answered without a key.
PUBLIC: dict[str, Any] = {"security": []}
SCHEME = "bearerAuth"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}

_DESCRIPTIONS = {
    400: "The body is not valid JSON (`malformed_body`).",
    401: "No key, a malformed `Authorization` header, an unknown or revoked key, or a "
    "deactivated department.",
    403: "The key is valid but may not do this (e.g. `operator_only`, `not_your_department`).",
    404: "The resource (or route) does not exist.",
    408: "The request body did not arrive in time (`body_timeout`).",
    409: "The change conflicts with the current state (e.g. `department_exists`).",
    410: "The topic is retired (`client.topic_retired`).",
    413: "The request body is larger than the exchange accepts (`body_too_large`).",
    422: "The input breaks a rule: `error.detail.field` names where.",
    429: "The grant's daily quota is used up (`client.quota_exceeded`).",
    502: "The provider failed or answered badly (`provider.*`).",
    503: "The database or audit log is unavailable, or a provider's circuit is open.",
    504: "The provider did not answer in time (`provider.timeout`).",
}

_WRITES = frozenset({"post", "put", "patch", "delete"})
_EXCHANGE_PREFIX = "/api/v1/exchange/"


def error_statuses(path: str, method: str, *, has_body: bool, public: bool) -> list[int]:
    """The error statuses an operation can answer, in order."""
    statuses = {404, 413, 422, 503}
    if has_body:
        statuses |= {400, 408}
    if not public:
        statuses |= {401, 403}
    if method in _WRITES:
        statuses.add(409)
    if path.startswith(_EXCHANGE_PREFIX):
        # The broker's own answers (see its descriptions): a retired topic, the quota and
        # the provider's side; a refused body is 400 there too.
        statuses |= {400, 410, 429, 502, 504}
    return sorted(statuses)


def _document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    # FastAPI's own validation shape is never sent: 422s use the error model.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: the operator's, or one a department was issued.",
        }
    }
    schema["security"] = [{SCHEME: []}]
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in error_statuses(
                path,
                method,
                has_body="requestBody" in operation,
                public=operation.get("security") == [],
            ):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) the documented schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _document(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
