"""The signed status list: every revoked licence and the platform clock's offset, which
verifiers cache to check a licence offline."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.licences.models import Licence
from exchange.licences.signing import LicenceSigner
from exchange.licences.token import status_body

__all__ = ["status_document"]


def status_document(
    session: Session,
    signer: LicenceSigner,
    *,
    now: dt.datetime,
    clock_offset_s: float,
    max_age_s: int,
) -> dict[str, str]:
    """The signed status list: every revoked licence, the platform clock's offset."""
    rows = session.execute(
        select(Licence.number, Licence.revoke_reason, Licence.revoked_at).where(
            Licence.status == "revoked"
        )
    )
    revoked = [(n, r or "", at) for n, r, at in rows if at is not None]
    body = status_body(
        key_id=signer.key_id,
        issued_at=now,
        clock_offset_s=clock_offset_s,
        max_age_s=max_age_s,
        revoked=revoked,
    )
    return {"body": body.decode(), "signature": signer.sign_status(body)}
