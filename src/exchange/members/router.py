"""``/api/v1/departments``: the operator registers member units and issues their keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from exchange.context import Caller, Ctx, DbSession, Operator
from exchange.members import service
from exchange.members.schemas import (
    DepartmentCreate,
    DepartmentCreated,
    DepartmentKind,
    DepartmentOut,
    DepartmentUpdate,
    Identity,
    KeyRotated,
    ProviderCredential,
)
from exchange.provider_auth import derive_provider_secret

router = APIRouter(prefix="/api/v1/departments", tags=["departments"])
# Outside /departments: the operator is no department, and asking who a key is must not be
# answered with a 404 (the portal asks on every switch of identity).
identity_router = APIRouter(prefix="/api/v1", tags=["departments"])


@identity_router.get("/whoami", response_model=Identity)
def identity(session: DbSession, caller: Caller) -> Identity:
    """Who the calling key belongs to: a department, or the platform operator."""
    if caller.is_operator:
        return Identity(code=caller.code, name="平台运营方", operator=True)
    dept = service.get_department(session, caller.code)
    return Identity(code=dept.code, name=dept.short_name or dept.name, operator=False)


# The example names a seeded unit, so generated calls (Schemathesis) reach a real one too.
UnitCodePath = Annotated[str, Path(description="The unit's code", examples=["gaj"])]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DepartmentCreated)
def create_department(
    body: DepartmentCreate, session: DbSession, _op: Operator, ctx: Ctx
) -> DepartmentCreated:
    """Register a member unit (operator only). The API key is returned once; so is the
    provider credential the unit verifies the exchange's calls to its API with."""
    dept, key = service.create_department(session, body)
    return DepartmentCreated(
        **service.to_out(dept).model_dump(),
        api_key=key,
        provider_credential=derive_provider_secret(ctx.provider_secret, dept.code),
    )


@router.get("", response_model=list[DepartmentOut])
def list_departments(
    session: DbSession, _caller: Caller, kind: DepartmentKind | None = None
) -> list[DepartmentOut]:
    """All member units, optionally of one kind. Any authenticated caller may list them."""
    return [service.to_out(d) for d in service.list_departments(session, kind)]


@router.get("/me", response_model=DepartmentOut)
def whoami(session: DbSession, caller: Caller) -> DepartmentOut:
    """The calling department (404 for the operator, which is not a department)."""
    return service.to_out(service.get_department(session, caller.code))


@router.get("/{code}", response_model=DepartmentOut)
def get_department(code: UnitCodePath, session: DbSession, _caller: Caller) -> DepartmentOut:
    """One member unit."""
    return service.to_out(service.get_department(session, code))


@router.patch("/{code}", response_model=DepartmentOut)
def update_department(
    code: UnitCodePath, body: DepartmentUpdate, session: DbSession, caller: Caller
) -> DepartmentOut:
    """Change a unit's name or API base URL (the unit itself or the operator).

    Deactivating (``active: false``) is the operator's alone.
    """
    caller.require(code)
    if body.active is not None:
        caller.require_operator()
    dept = service.update_department(session, code, body)
    return service.to_out(dept)


@router.post("/{code}/keys", response_model=KeyRotated)
def rotate_key(code: UnitCodePath, session: DbSession, caller: Caller) -> KeyRotated:
    """Revoke the unit's keys and issue a new one (the unit itself or the operator)."""
    caller.require(code)
    key = service.rotate_key(session, code)
    return KeyRotated(code=code, api_key=key)


@router.post("/{code}/provider-credential", response_model=ProviderCredential)
def provider_credential(
    code: UnitCodePath, session: DbSession, _op: Operator, ctx: Ctx
) -> ProviderCredential:
    """Hand a provider its credential again (operator only): the secret the broker signs
    every call to the unit's API with. It is derived from the exchange's master secret,
    not stored; rotating that secret rotates every unit's credential."""
    service.get_department(session, code)
    return ProviderCredential(
        code=code,
        credential=derive_provider_secret(ctx.provider_secret, code),
        window_seconds=ctx.settings.provider_window,
    )
