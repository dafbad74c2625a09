"""Registering member units and issuing, checking and rotating their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.db.freshness import announce
from exchange.errors import Conflict, NotAuthenticated, NotFound, NotPermitted
from exchange.members.models import ApiKey, Department
from exchange.members.schemas import (
    DepartmentCreate,
    DepartmentKind,
    DepartmentOut,
    DepartmentUpdate,
)

OPERATOR = "operator"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(code: str) -> str:
    return f"exk_{code}_{secrets.token_urlsafe(24)}"


class DepartmentNotFound(NotFound):
    code = "department_not_found"


def to_out(dept: Department) -> DepartmentOut:
    return DepartmentOut(
        code=dept.code,
        name=dept.name,
        short_name=dept.short_name,
        kind=DepartmentKind(dept.kind),
        credit_code=dept.credit_code,
        area_code=dept.area_code,
        base_url=dept.base_url,
        active=dept.active,
        created_at=dept.created_at,
    )


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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the platform operator, or one department."""

    code: str

    @property
    def is_operator(self) -> bool:
        return self.code == OPERATOR

    def require_operator(self) -> None:
        if not self.is_operator:
            raise NotPermitted("only the platform operator may do this", code="operator_only")

    def require(self, department: str) -> None:
        """Allow the operator or the named department; 403 for anyone else."""
        if not self.is_operator and self.code != department:
            raise NotPermitted(
                f"department {self.code!r} may not act for {department!r}",
                code="not_your_department",
            )


class Authenticator:
    """Maps bearer keys to principals through a cache (the broker checks every call).

    The cache holds what the database said until a key or a department changes: it
    follows the ``keys`` and ``departments`` announcements (:mod:`exchange.db.freshness`),
    so a rotated key or a deactivated department is refused by every process as soon as
    the change has answered.
    """

    def __init__(self, db: Database, operator_key: str) -> None:
        self._db = db
        self._operator_hash = hash_key(operator_key)
        self._cache: dict[str, str] = {}
        #: moves with every invalidation: a lookup that read the database before it
        #: does not cache what it read
        self._generation = 0
        self._lock = threading.Lock()
        for topic in ("keys", "departments"):
            db.freshness.subscribe(topic, self.invalidate)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache = {}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated(
                "missing API key: send 'Authorization: Bearer <key>'", code="missing_key"
            )
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise NotAuthenticated(
                "malformed Authorization header: use 'Bearer <key>'", code="bad_key"
            )
        digest = hash_key(key)
        if hmac.compare_digest(digest, self._operator_hash):
            return Principal(OPERATOR)
        hit = self._cache.get(digest)
        if hit is not None:
            return Principal(hit)
        generation = self._generation
        with self._db.sessions() as session:
            row = session.execute(
                select(ApiKey.department_code, Department.active)
                .join(Department, Department.code == ApiKey.department_code)
                .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            ).first()
        if row is None:
            raise NotAuthenticated("unknown or revoked API key", code="bad_key")
        if not row.active:
            raise NotAuthenticated(
                f"department {row.department_code!r} is deactivated", code="department_inactive"
            )
        with self._lock:
            if generation == self._generation:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = row.department_code
        return Principal(row.department_code)
