"""The operator key and the demo keys of seeded departments."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from exchange.config import Settings


def state_dir(settings: Settings) -> Path:
    """Where local state lives: beside the SQLite file, else ./.exchange."""
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            return Path(database).expanduser().resolve().parent
    return Path(".exchange").resolve()


def read_operator_key(settings: Settings) -> str | None:
    """EXCHANGE_OPERATOR_KEY, else the key kept in the state dir; None (nothing written)
    when there is neither: for commands that talk to an exchange rather than start one."""
    if settings.operator_key:
        return settings.operator_key
    path = state_dir(settings) / "operator.key"
    return path.read_text().strip() if path.exists() else None


def resolve_operator_key(settings: Settings) -> tuple[str, bool]:
    """(key, generated): EXCHANGE_OPERATOR_KEY, else a key kept in the state dir.

    Keeping the generated key means a restarted ``exchange up`` keeps working with the
    credentials its first banner printed.
    """
    if settings.operator_key:
        return settings.operator_key, False
    path = state_dir(settings) / "operator.key"
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = f"exk_operator_{secrets.token_urlsafe(24)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key, True


def resolve_provider_secret(settings: Settings) -> tuple[str, bool]:
    """(secret, generated): EXCHANGE_PROVIDER_SECRET, else one kept beside the operator key.

    Providers' credentials derive from it (:func:`exchange.provider_auth.
    derive_provider_secret`), so it never goes into the database. Created exclusively:
    two processes starting on one state directory end up with the same secret.
    """
    if settings.provider_secret:
        return settings.provider_secret, False
    path = provider_secret_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"exms_{secrets.token_urlsafe(32)}\n")
            return path.read_text().strip(), True
    deadline = time.monotonic() + 5
    while not (secret := path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)  # another process created the file and is writing it
    return secret, False


def provider_secret_path(settings: Settings) -> Path:
    """Where the providers' master secret is kept when EXCHANGE_PROVIDER_SECRET is unset."""
    return state_dir(settings) / "provider.secret"


def audit_key_path(settings: Settings) -> Path:
    """The audit signing key's file: EXCHANGE_AUDIT_KEY_FILE, else beside the operator key."""
    return settings.audit_key_file or state_dir(settings) / "audit-signing.key"


def audit_mirror_spec(settings: Settings) -> str:
    """Where checkpoints are mirrored: EXCHANGE_AUDIT_MIRROR, else a file beside the state."""
    return settings.audit_mirror or str(state_dir(settings) / "audit-checkpoints.ndjson")


def demo_key(operator_key: str, code: str) -> str:
    """The key a seeded department starts with, derived from the operator's secret.

    Derived (not random) so the banner, the demo and load tests can name every seeded
    department's key without a store of plain keys; whoever holds the operator key could
    rotate them anyway. Departments created through the API get random keys.
    """
    mac = hmac.new(operator_key.encode(), f"demo:{code}".encode(), hashlib.sha256).hexdigest()
    return f"exk_{code}_{mac[:32]}"
