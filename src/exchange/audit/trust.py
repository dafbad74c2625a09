"""What a process needs to write or check a tamper-evident log, resolved from Settings:
the signing key (or only its public half), the checkpoint mirror and the journal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exchange.audit import keys
from exchange.audit.checkpoint import Mirror, mirror_for
from exchange.audit.journal import journal_for
from exchange.audit.keys import Signer, Verifier
from exchange.config import Settings
from exchange.security import audit_key_path, audit_mirror_spec


@dataclass
class Trust:
    signer: Signer | None
    verifier: Verifier | None
    mirror: Mirror | None
    journal: Path | None
    key_path: Path
    #: whether this call generated the signing key
    created: bool = False

    @classmethod
    def of(cls, settings: Settings, *, create: bool = True) -> Trust:
        """The exchange's own: the key is generated on first start (``create``); a checking
        command passes ``create=False`` and gets no signer if there is no key."""
        path = audit_key_path(settings)
        signer: Signer | None
        created = False
        if create:
            signer, created = keys.load_or_create(path)
        else:
            signer = keys.load(path) if path.exists() else None
        return cls(
            signer=signer,
            verifier=signer.verifier if signer is not None else None,
            mirror=mirror_for(audit_mirror_spec(settings)),
            journal=journal_for(settings.database_url),
            key_path=path,
            created=created,
        )

    def close(self) -> None:
        if self.mirror is not None:
            self.mirror.close()
