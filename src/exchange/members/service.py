"""Registering member units and issuing, checking and rotating their API keys."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.authn import KeyOwner, hash_key
from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.db.freshness import announce
from exchange.errors import Conflict, NotFound
from exchange.members.models import ApiKey, Department
from exchange.members.schemas import (
    DepartmentCreate,
    DepartmentOut,
    DepartmentUpdate,
)


def new_key(code: str) -> str:
    return f"exk_{code}_{secrets.token_urlsafe(24)}"


class DepartmentNotFound(NotFound):
    code = "department_not_found"


def to_out(dept: Department) -> DepartmentOut:
    """The row read by attribute: its columns are the schema's fields (``kind`` is stored
    as the enum's value)."""
    return DepartmentOut.model_validate(dept, from_attributes=True)


def get_department(session: Session, code: str) -> Department:
    dept = session.get(Department, code)
    if dept is None:
        raise DepartmentNotFound(f"no department with code {code!r}")
    return dept


def list_departments(session: Session, kind: str | None = None) -> Sequence[Department]:
    stmt = select(Department).order_by(Department.code)
    if kind:
        stmt = stmt.where(Department.kind == kind)
    return session.scalars(stmt).all()


def create_department(
    session: Session, spec: DepartmentCreate, *, api_key: str | None = None
) -> tuple[Department, str]:
    """Register a unit and issue its first key (returned once, stored hashed)."""
    if session.get(Department, spec.code) is not None:
        raise Conflict(f"department {spec.code!r} already exists", code="department_exists")
    for column, value in (("name", spec.name), ("credit_code", spec.credit_code)):
        if value is not None and session.scalar(
            select(Department.code).where(getattr(Department, column) == value)
        ):
            raise Conflict(
                f"another department already has {column} {value!r}", code="department_exists"
            )
    dept = Department(
        code=spec.code,
        name=spec.name,
        short_name=spec.short_name,
        kind=spec.kind.value,
        credit_code=spec.credit_code,
        area_code=spec.area_code,
        base_url=spec.base_url,
        active=True,
        created_at=utcnow(),
    )
    key = api_key or new_key(spec.code)
    session.add(dept)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"department {spec.code!r} conflicts with an existing one", code="department_exists"
        ) from exc
    session.add(ApiKey(department_code=spec.code, key_hash=hash_key(key), prefix=key[:16]))
    session.flush()
    announce(session, "departments")
    return dept, key


def update_department(session: Session, code: str, change: DepartmentUpdate) -> Department:
    dept = get_department(session, code)
    fields = change.model_dump(exclude_unset=True)
    name = fields.get("name")
    if name is not None and session.scalar(
        select(Department.code).where(Department.name == name, Department.code != code)
    ):
        raise Conflict(f"another department already has name {name!r}", code="department_exists")
    for field, value in fields.items():
        setattr(dept, field, value)
    try:
        session.flush()
    except IntegrityError as exc:  # the same name taken by a concurrent change
        raise Conflict(
            f"department {code!r} conflicts with an existing one", code="department_exists"
        ) from exc
    announce(session, "departments")
    return dept


def rotate_key(session: Session, code: str) -> str:
    """Revoke every key of the department and issue a new one."""
    get_department(session, code)
    now = utcnow()
    for old in session.scalars(
        select(ApiKey).where(ApiKey.department_code == code, ApiKey.revoked_at.is_(None))
    ):
        old.revoked_at = now
    key = new_key(code)
    session.add(ApiKey(department_code=code, key_hash=hash_key(key), prefix=key[:16]))
    session.flush()
    announce(session, "keys")
    return key


def key_owner(db: Database, digest: str) -> KeyOwner | None:
    """The department whose current (unrevoked) key hashes to ``digest``: what the
    authenticator (:class:`exchange.authn.Authenticator`) reads on a cache miss."""
    with db.sessions() as session:
        row = session.execute(
            select(ApiKey.department_code, Department.active)
            .join(Department, Department.code == ApiKey.department_code)
            .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        ).first()
    return None if row is None else KeyOwner(row.department_code, row.active)
