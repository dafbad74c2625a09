"""Authentication: who is calling (:class:`Principal`) and the authenticator that maps a
Bearer key to one.

Every domain checks its callers through these, and the request context
(:mod:`exchange.context`) hands the principal to routers, so this module imports no
domain: the key rows belong to the members domain, which gives the authenticator its
lookup (:func:`exchange.members.service.key_owner`) when the app is assembled.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from exchange.db.freshness import Freshness
from exchange.errors import NotAuthenticated, NotPermitted

__all__ = ["OPERATOR", "Authenticator", "KeyOwner", "Principal", "hash_key"]

OPERATOR = "operator"


def hash_key(key: str) -> str:
    """How a key is stored and looked up: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


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


class KeyOwner(NamedTuple):
    """The department a current (unrevoked) key belongs to, and whether it is active."""

    department_code: str
    active: bool


class Authenticator:
    """Maps bearer keys to principals through a cache (the broker checks every call).

    ``owner_of`` reads a key's owner by the key's hash from the database. The cache holds
    what it said until a key or a department changes: it follows the ``keys`` and
    ``departments`` announcements (:mod:`exchange.db.freshness`), so a rotated key or a
    deactivated department is refused by every process as soon as the change has answered.
    """

    def __init__(
        self,
        freshness: Freshness,
        operator_key: str,
        owner_of: Callable[[str], KeyOwner | None],
    ) -> None:
        self._owner_of = owner_of
        self._operator_hash = hash_key(operator_key)
        self._cache: dict[str, str] = {}
        #: moves with every invalidation: a lookup that read the database before it
        #: does not cache what it read
        self._generation = 0
        self._lock = threading.Lock()
        for topic in ("keys", "departments"):
            freshness.subscribe(topic, self.invalidate)

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
        row = self._owner_of(digest)
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
