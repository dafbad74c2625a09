"""Database: declarative base, engines and sessions (SQLite embedded, PostgreSQL at scale)."""

from exchange.db.base import Base, utcnow
from exchange.db.engine import Database

__all__ = ["Base", "Database", "utcnow"]
