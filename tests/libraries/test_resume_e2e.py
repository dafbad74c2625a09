"""A pass stopped by a restart resumes from its watermark, without reading again."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.harness import OPERATOR, topic_code
from tests.libraries.conftest import Site
from tests.polling import wait_until

from exchange.libraries import gather as gather_module
from exchange.libraries.models import LibraryRecord, LibrarySource
from exchange.libraries.store import write_page


def test_gathering_resumes_after_a_restart(
    site_factory: Callable[..., AbstractContextManager[Site]],
) -> None:
    with site_factory() as site:
        code = topic_code(site.ctx, "household-registration")
        # Slow the source so the pass is surely under way when the exchange stops.
        site.faults("gaj", "household-registration", latency_ms=300)
        resp = site.http.post(
            "/api/v1/libraries/gather", json={"library": "person"}, headers=OPERATOR
        )
        assert resp.status_code == 202

        def started() -> bool:
            with site.ctx.db.sessions() as session:
                row = session.scalar(
                    select(LibrarySource).where(LibrarySource.resource_code == code)
                )
            return row is not None and row.watermark > 0

        wait_until(started, "the pass to commit its first page", within=60)
    # Stopped mid-pass: the watermark of the last committed page is kept.
    with site_factory() as site:
        with site.ctx.db.sessions() as session:
            row = session.scalar(select(LibrarySource).where(LibrarySource.resource_code == code))
            assert row is not None
            stopped_at, total = row.watermark, row.total_rows
            assert row.state == "gathering"
            assert total is not None
            assert 0 < stopped_at < total
            held = session.scalar(
                select(func.count())
                .select_from(LibraryRecord)
                .where(LibraryRecord.source_id == row.id)
            )
            assert held == stopped_at  # one household record per row, committed with it
        site.faults("gaj", "household-registration", latency_ms=0)
        status = site.gather(library="person")
        # Only the rest was read again.
        assert status["last"]["gathered"][code] == total - stopped_at
        with site.ctx.db.sessions() as session:
            row = session.scalar(select(LibrarySource).where(LibrarySource.resource_code == code))
            assert row is not None
            assert row.state == "done"
            assert row.watermark == total
            assert row.gathered == total
            held = session.scalar(
                select(func.count())
                .select_from(LibraryRecord)
                .where(LibraryRecord.source_id == row.id)
            )
            assert held == total


def test_a_failed_page_write_stops_the_writes_queued_behind_it(
    site_factory: Callable[..., AbstractContextManager[Site]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pages are read and staged ahead of the writer: when one page's write fails, the
    pages read after it are not written either (their watermarks would skip the failed
    page), so the source resumes at the failed page, and the next pass completes it."""
    with site_factory() as site:
        site.gather()
        site.approve_pending()
        site.wait_granted()
        code = topic_code(site.ctx, "household-registration")
        with site.ctx.db.sessions() as session:
            sid = session.scalar(
                select(LibrarySource.id).where(LibrarySource.resource_code == code)
            )
        calls: list[int] = []

        def failing(db: Any, source_id: int, rows: Any, **kw: Any) -> int:
            if source_id == sid:
                calls.append(kw["watermark"])
                if len(calls) == 2:
                    raise sqlite3.OperationalError("disk I/O error (injected)")
            return write_page(db, source_id, rows, **kw)

        monkeypatch.setattr(gather_module, "write_page", failing)
        with caplog.at_level(logging.ERROR, logger="exchange.libraries.router"):
            site.gather(library="person", full=True)
        failed = [r for r in caplog.records if "gathering pass failed" in r.getMessage()]
        assert len(failed) == 1
        assert failed[0].exc_info is not None
        assert "disk I/O error (injected)" in str(failed[0].exc_info[1])
        with site.ctx.db.sessions() as session:
            row = session.get(LibrarySource, sid)
            assert row is not None
            assert row.total_rows is not None
            assert row.total_rows > 3 * site.ctx.settings.library_page
            # Only the first page's write committed; none after the failed second.
            assert calls == [500, 1000]
            assert row.watermark == 500
            assert row.state == "gathering"
            total = row.total_rows
        monkeypatch.setattr(gather_module, "write_page", write_page)
        status = site.gather(library="person")
        assert status["last"]["gathered"][code] == total - 500
        with site.ctx.db.sessions() as session:
            row = session.get(LibrarySource, sid)
            assert row is not None
            assert (row.state, row.watermark) == ("done", total)
            held = session.scalar(
                select(func.count())
                .select_from(LibraryRecord)
                .where(LibraryRecord.source_id == sid)
            )
            assert held == total
