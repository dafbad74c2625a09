"""A pass stopped by a restart resumes from its watermark, without reading again."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import func, select
from tests.e2e.harness import OPERATOR, topic_code
from tests.libraries.conftest import Site
from tests.polling import wait_until

from exchange.libraries.models import LibraryRecord, LibrarySource


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
