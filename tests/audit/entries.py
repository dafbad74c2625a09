"""One sample audit entry for the audit tests: each test file names only what it varies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from exchange.audit.entry import Entry

T0 = dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)


def sample_entry(i: int, **overrides: Any) -> Entry:
    """The ``i``-th query of civil affairs to public security, ``i`` seconds after ``T0``."""
    fields: dict[str, Any] = {
        "request_id": f"req-{i}",
        "at": T0 + dt.timedelta(seconds=i),
        "kind": "query",
        "consumer": "mzj",
        "provider": "gaj",
        "resource_code": "101001001/000001",
        "items": ["id_number", "name"],
        "case": "低保核对",
        "records": 1,
        "outcome": "ok",
        "status": 200,
        "latency_us": 900 + i,
    }
    fields.update(overrides)
    return Entry(**fields)
