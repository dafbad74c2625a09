"""A call the exchange cannot audit gets one answer from every service: the writer missing
from this part or unable to make the entry durable are the same 503 to the caller."""

from __future__ import annotations

import asyncio

import pytest

from exchange.audit.deps import audit_writer
from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.context import AppContext
from exchange.errors import error_body
from exchange.libraries.auditing import LookupAudit


def test_one_code_one_advice_and_the_reason_for_logs() -> None:
    exc = AuditUnavailable("the audit journal could not be written: OSError")
    assert (exc.status_code, exc.code) == (503, "broker.audit_unavailable")
    body = error_body(exc.code, exc.message, "rid", exc.detail)["error"]
    assert body["message"] == AuditUnavailable.ADVICE
    assert "retry" in body["message"]
    assert body["detail"] == {
        "side": "broker",
        "reason": "the audit journal could not be written: OSError",
    }
    assert str(exc) == "the audit journal could not be written: OSError"


def test_a_part_without_the_writer_refuses_as_a_failing_writer_does(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "audit", None)
    with pytest.raises(AuditUnavailable, match="does not run in this part"):
        audit_writer(ctx)
    stopped = AuditWriter(ctx.db)
    monkeypatch.setattr(ctx, "audit", stopped)
    assert audit_writer(ctx) is stopped


def test_a_library_lookup_is_not_answered_unaudited(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "audit", None)
    lookups = LookupAudit()
    lookups.ctx, lookups.unit = ctx, "zwsjj"
    entry = lookups.audit_entry("rid", "gaj", "population", None, "ok", 200, 0.0)
    with pytest.raises(AuditUnavailable) as caught:
        asyncio.run(lookups.audit(entry))
    assert caught.value.code == "broker.audit_unavailable"
