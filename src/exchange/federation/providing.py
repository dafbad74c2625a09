"""Bulk provision, the providing side: one page of a published table topic for the peer
(see :mod:`exchange.federation.provision` for the page format)."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.broker.errors import ProviderBadResponse, client_error
from exchange.broker.filtering import checked_lines
from exchange.context import present
from exchange.db.threads import run_joined
from exchange.federation import provision
from exchange.federation.connection import Connection


@dataclass(frozen=True, slots=True)
class ProvidedPage:
    """A page of bulk provision as the providing platform sends it."""

    body: bytes
    count: int
    items: list[str]
    provider: str
    span: str
    #: nothing new and no watermark moved (a caught-up poll)
    empty: bool = False


class Providing(Connection):
    """The pages this platform provides to its peer."""

    async def provide(
        self, request_id: str, code: str, rows: int, changes: int | None, limit: int
    ) -> ProvidedPage:
        """One page of a published table topic for the peer (see
        :mod:`exchange.federation.provision`); refusals raise :class:`ExchangeError`."""
        broker = present(self.ctx.broker, "the broker does not run in this part")
        if not await self.is_published(code):
            raise client_error(
                "not_published", f"{code} is not published to the {self.peer_level} platform", 404
            )
        front, seq = code.split("/")
        route = await broker.routes.get(front, seq)
        if route is None:
            raise client_error("topic_not_found", f"no topic {code}", 404)
        if route.status == "retired":
            raise client_error("topic_retired", f"topic {code} is retired (废置)", 410)
        if route.resource_type != "table":
            raise client_error(
                "not_exportable",
                f"{code} is an {route.resource_type} topic; only table topics are provided in bulk",
                409,
            )
        grants = broker.grants
        decision = await run_joined(grants.check, self.peer_code, code, None, records=1)
        if not decision.allowed:
            raise client_error(
                decision.reason,
                f"the {self.peer_level} platform may not receive {code}: {decision.reason}",
                429 if decision.reason == "quota_exceeded" else 403,
                {"reason": decision.reason, "platform": self.level},
            )
        if decision.remaining_quota is not None:
            limit = max(1, min(limit, decision.remaining_quota + 1))
        wanted = tuple(sorted(decision.items))
        broker._endpoint(route)
        # Pinned before the export is read: a change after this point comes as an event.
        pinned = None
        if changes is None:
            pinned = await run_joined(self._outbox_end, code)
        # The granted items go to the department (in the signed path), which projects
        # them: each line is then only checked, and forwarded as it came (decoding and
        # re-encoding every record was most of a page's cost here).
        async with broker.upstream.stream(
            route.provider,
            route.url("/export"),
            {"offset": str(rows), "limit": str(limit), "fields": ",".join(wanted)},
            request_id,
        ) as resp:
            data = await resp.read()
            total = int(resp.headers.get("X-Total-Rows", rows))
            rows_to = max(rows, int(resp.headers.get("X-Next-Offset", rows)))
        records, n = b"", 0
        if (cut := data.rfind(b"\n")) >= 0:
            records, n = await run_joined(checked_lines, route.provider, data, cut, wanted)
        if data[cut + 1 :].strip():
            raise ProviderBadResponse(
                route.provider, "the provider's export ended in the middle of a record"
            )
        events: list[bytes] = []
        changes_to: int = changes if changes is not None else (pinned or 0)
        if changes is not None and rows_to >= total and n < limit:
            events, changes_to = await run_joined(
                self._changes_after, code, changes, limit - n, decision.items
            )
        header = provision.PageHeader(
            rows_from=rows,
            rows_to=rows_to,
            rows_total=total,
            changes_from=changes,
            changes_to=changes_to,
            records=n,
            events=len(events),
        )
        count = n + len(events)
        if count and decision.grant_id is not None:
            grants.consume(decision.grant_id, count)
        broker.metrics.delivered(route.provider, count)
        return ProvidedPage(
            body=provision.encode_page(header, records, events),
            count=count,
            items=sorted(decision.items),
            provider=route.provider,
            span=f"provision rows {rows}-{rows_to} of {total}, changes {changes}-{changes_to}",
            empty=not count and (rows_to, changes_to) == (rows, changes),
        )

    def _outbox_end(self, code: str) -> int:
        with self.db.sessions() as session:
            return provision.outbox_end(session, code)

    def _changes_after(
        self, code: str, after: int, limit: int, items: frozenset[str]
    ) -> tuple[list[bytes], int]:
        with self.db.sessions() as session:
            return provision.changes_after(session, code, after, limit, items)
