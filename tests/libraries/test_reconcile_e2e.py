"""A full pass reconciles: what a source no longer exports leaves the library (its other
sources' elements stay), counted and audited; a pass cut short removes nothing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
from sqlalchemy import select
from tests.e2e.harness import OPERATOR, key_of, topic_code
from tests.libraries.conftest import Site
from tests.polling import wait_until

from exchange.audit.models import AuditEntry
from exchange.libraries.gather import SWEPT
from exchange.libraries.models import LibraryRecord, LibrarySource


def _granted(site: Site) -> None:
    site.gather()
    site.approve_pending()
    site.wait_granted()
    site.gather()


def _emigrate(site: Site) -> str:
    """户口迁出市外 at the mock public security: the person's household record is removed
    there (their other departments' records stay). Their ID number."""
    resp = httpx.post(f"{site.departments_url}/departments/_changes/emigration", headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    (event,) = resp.json()["events"]
    assert event["record"] is None
    key: str = event["key"]
    return key


def _held_by(site: Site, source_id: int, key: str) -> bool:
    with site.ctx.db.sessions() as session:
        row = session.get(LibraryRecord, (source_id, key))
    return row is not None


def _source(site: Site, code: str) -> dict[str, Any]:
    libs = site.http.get("/api/v1/libraries", headers=OPERATOR).json()
    return next(s for lib in libs for s in lib["sources"] if s["resource_code"] == code)


def _elements(site: Site, key: str) -> dict[str, Any]:
    resp = site.http.get(f"/api/v1/libraries/person/records/{key}", headers=key_of("mzj"))
    assert resp.status_code == 200, resp.text
    records = resp.json()["records"]
    return {} if not records else dict(records[0]["elements"])


def test_a_record_gone_from_its_source_leaves_the_library_at_the_next_full_pass(
    both_sites: Callable[..., AbstractContextManager[Site]],
) -> None:
    with both_sites() as site:
        _granted(site)
        code = topic_code(site.ctx, "household-registration")
        household = _source(site, code)
        key = _emigrate(site)
        before = _elements(site, key)
        assert before["person.name"]["provider"] == "gaj"
        others = {e for e, v in before.items() if v["resource_code"] != code}
        assert others  # the person is known to other sources too (insurance, civil affairs)

        # An incremental pass reads only new export rows: it removes nothing.
        site.gather()
        assert _held_by(site, household["id"], key)

        status = site.gather(full=True)
        last = status["last"]
        assert last["removed"][code] == 1
        assert last["total_removed"] == sum(last["removed"].values()) == 1
        assert not _held_by(site, household["id"], key)
        after = _elements(site, key)
        # The household register's elements are gone; the other sources' stay.
        assert not any(v["resource_code"] == code for v in after.values())
        assert set(after) == others
        source = _source(site, code)
        assert source["removed"] == source["pass_removed"] == 1
        assert source["pass_gathered"] == household["pass_gathered"] - 1  # records read
        lib = next(
            lib
            for lib in site.http.get("/api/v1/libraries", headers=OPERATOR).json()
            if lib["library"] == "person"
        )
        assert lib["removed"] == 1
        metrics = site.http.get("/metrics", headers=OPERATOR).text
        line = next(
            ln
            for ln in metrics.splitlines()
            if ln.startswith("exchange_library_records_removed_total{")
            and f'resource_code="{code}"' in ln
        )
        assert line.endswith(" 1.0")

        # Audited beside the pass's export pages: one entry a source swept (each full
        # pass's end), with the records it removed: 1 for the household register this time.
        def swept() -> list[AuditEntry] | None:
            with site.ctx.db.sessions() as session:
                rows = list(
                    session.scalars(
                        select(AuditEntry)
                        .where(AuditEntry.outcome == SWEPT, AuditEntry.resource_code == code)
                        .order_by(AuditEntry.seq)
                    )
                )
            return rows if rows and rows[-1].records else None

        entries = wait_until(swept, "the sweep's audit entry", every=0.05)
        assert [e.records for e in entries] == [0] * (len(entries) - 1) + [1]
        assert (entries[-1].provider, entries[-1].consumer, entries[-1].kind) == (
            "gaj",
            "zsj",
            "library",
        )

        # The next full pass finds nothing more gone.
        again = site.gather(full=True)["last"]
        assert again["removed"][code] == 0
        assert _source(site, code)["removed"] == 1


def test_a_pass_cut_short_removes_nothing_and_sweeps_once_resumed_to_the_end(
    both_sites: Callable[..., AbstractContextManager[Site]],
) -> None:
    with both_sites() as site:
        _granted(site)
        code = topic_code(site.ctx, "household-registration")
        key = _emigrate(site)
        source_id = _source(site, code)["id"]
        # Slow the source so the full pass is surely under way when the exchange stops.
        site.faults("gaj", "household-registration", latency_ms=300)
        resp = site.http.post(
            "/api/v1/libraries/gather", json={"library": "person", "full": True}, headers=OPERATOR
        )
        assert resp.status_code == 202

        def begun() -> bool:
            with site.ctx.db.sessions() as session:
                row = session.get(LibrarySource, source_id)
            return row is not None and row.state == "gathering" and row.watermark > 0

        wait_until(begun, "the full pass to commit a page of the household register", within=60)
    with both_sites() as site:
        with site.ctx.db.sessions() as session:
            row = session.get(LibrarySource, source_id)
            assert row is not None
            assert row.state == "gathering"
            assert row.total_rows is not None
            assert 0 < row.watermark < row.total_rows
            assert row.generation > row.swept_generation
            assert row.removed == 0
        # Cut short: nothing the pass did not get to see was removed.
        assert _held_by(site, source_id, key)
        site.faults("gaj", "household-registration", latency_ms=0)
        # Resumed (incremental, from the watermark) to the end: the full pass's sweep.
        last = site.gather(library="person")["last"]
        assert last["removed"][code] == 1
        assert not _held_by(site, source_id, key)
        assert _source(site, code)["removed"] == 1
