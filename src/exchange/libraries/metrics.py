"""The libraries' figures in ``/metrics``, read from the database at scrape time (so they
count every process's gathering, and survive restarts)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from exchange.libraries.gather import Gatherer
from exchange.libraries.models import LibraryConflict, LibrarySource
from exchange.libraries.service import LibraryService


class LibraryCollector(Collector):
    def __init__(self, service: LibraryService, gatherer: Gatherer) -> None:
        self._service = service
        self._gatherer = gatherer

    def collect(self) -> Iterator[Metric]:
        db = self._service.db
        with db.sessions() as session:
            sources = session.execute(
                select(
                    LibrarySource.library,
                    LibrarySource.resource_code,
                    LibrarySource.provider,
                    LibrarySource.gathered,
                    LibrarySource.removed,
                    LibrarySource.watermark,
                    LibrarySource.total_rows,
                )
            ).all()
            conflicts = session.execute(
                select(
                    LibraryConflict.library,
                    LibraryConflict.kind,
                    LibraryConflict.status,
                    func.count(),
                ).group_by(LibraryConflict.library, LibraryConflict.kind, LibraryConflict.status)
            ).all()
        gathered = CounterMetricFamily(
            "exchange_library_records_gathered",
            "Records gathered into the base information libraries, by library and source",
            labels=["library", "resource_code", "provider"],
        )
        removed = CounterMetricFamily(
            "exchange_library_records_removed",
            "Records removed from the base information libraries as no longer at their "
            "source (a full pass's sweep), by library and source",
            labels=["library", "resource_code", "provider"],
        )
        progress = GaugeMetricFamily(
            "exchange_library_source_progress",
            "Share of a source's export rows read in the current or last pass (watermark / rows)",
            labels=["library", "resource_code", "provider"],
        )
        totals: dict[str, int] = {}
        for library, code, provider, n, gone, watermark, total in sources:
            gathered.add_metric([library, code, provider], n)
            removed.add_metric([library, code, provider], gone)
            progress.add_metric([library, code, provider], watermark / total if total else 0.0)
            totals[library] = totals.get(library, 0) + n
        yield gathered
        yield removed
        yield progress
        total_family = CounterMetricFamily(
            "exchange_library_gathered",
            "Records gathered into each base information library, every source added up",
            labels=["library"],
        )
        for library, n in totals.items():
            total_family.add_metric([library], n)
        yield total_family
        family = GaugeMetricFamily(
            "exchange_library_conflicts",
            "Conflicts between sources found by the libraries' quality checks",
            labels=["library", "kind", "status"],
        )
        for library, kind, status, n in conflicts:
            family.add_metric([library, kind, status], n)
        yield family
        yield GaugeMetricFamily(
            "exchange_library_gathering",
            "1 while a gathering pass runs in this process",
            value=1 if self._gatherer.running else 0,
        )
