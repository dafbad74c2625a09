"""What one running exchange holds, and the FastAPI dependencies that hand it to routers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from exchange.clock import Clock
from exchange.config import Settings
from exchange.db.engine import Database
from exchange.members.service import Authenticator, Principal


@dataclass
class AppContext:
    """Built once per app in its lifespan; no module-level singletons."""

    settings: Settings
    db: Database
    clock: Clock
    auth: Authenticator
    # Runtime parts of later domains (authz cache, broker upstream, audit writer …),
    # registered by name so app assembly stays in one place.
    parts: dict[str, Any] = field(default_factory=dict)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(ctx: Annotated[AppContext, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


def get_principal(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    authorization: Annotated[
        str | None, Header(description="Bearer <API key>", include_in_schema=False)
    ] = None,
) -> Principal:
    return ctx.auth.authenticate(authorization)


def get_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require_operator()
    return principal


Ctx = Annotated[AppContext, Depends(get_ctx)]
# scope="function": the session commits when the endpoint returns, before the response is
# sent, so a 201 is never seen before its rows are (the default closes after sending).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
Caller = Annotated[Principal, Depends(get_principal)]
Operator = Annotated[Principal, Depends(get_operator)]
