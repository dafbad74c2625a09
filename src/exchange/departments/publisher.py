"""The mock departments publish their change events to the exchange, as a department would.

A real department integrates by pushing: its own system knows when a record changed, keeps
what it has not handed over yet, and posts it to the platform with its own API key
(``POST /api/v1/exchange/{front}/{seq}/changes``), where one datum, one source is checked
and the events enter the durable outbox. The platform polling 151 departments' systems
would need an inbound route into each and would learn of changes late; so the mock
departments push too, through the same endpoint and the same checks as any provider.

The department's log (:class:`~.changes.ChangeLog`) is its outbox: the publisher pins it,
posts each department's events in order (runs of one topic, at most 1,000 per call),
and acknowledges a run only after the exchange accepted it, so nothing is lost while the
exchange is down (the log holds the events; the city waits when a department's
unpublished events reach the log's size). A run the exchange refuses for good (the topic
is not in this catalog or retired, a record it rejects) is counted and skipped rather than
stall the department; an outage, a 5xx or a refused key is retried with exponential
backoff and jitter. Delivery to the exchange is at least once, and exactly once into the
outbox: every event carries its own id (``event_id``: department, this log's run and the
event's number), so a call that timed out after the exchange committed it is posted again
and answered with the ids already given, not written twice.

The publisher also keeps the departments in step with the platform clock when they run
as a process of their own (:class:`RemoteClock`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from exchange.departments.changes import ChangeEvent, ChangeLog, wall_now
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.licence_issue import licence_for

__all__ = ["MAX_EVENTS", "Publisher", "RemoteClock"]

#: Most events one call posts (the exchange's limit).
MAX_EVENTS = 1_000
_IDLE = 0.2
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
#: Answers that will not change by trying again: skip the run, count it.
_FINAL = {404, 409, 422}
_log = logging.getLogger(__name__)


class RemoteClock:
    """The platform clock read from the exchange (``GET /api/v1/clock``): wall time plus the
    offset last read, so a standalone departments process ages with ``clock advance``."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return wall_now() + self.offset

    async def refresh(self, client: httpx.AsyncClient, key: str) -> None:
        resp = await client.get("/api/v1/clock", headers={"Authorization": f"Bearer {key}"})
        resp.raise_for_status()
        self.offset = dt.timedelta(seconds=float(resp.json()["offset_seconds"]))


@dataclass(slots=True)
class _State:
    """What the publisher knows of one department."""

    codes: dict[str, str] | None = None  # topic slug -> resource code
    published: int = 0
    skipped: int = 0
    calls: int = 0
    failures: int = 0
    last_error: str | None = None
    backoff: float = 0.0
    retry_at: float = 0.0


class Publisher:
    """Posts every department's change log to the exchange at ``base_url``."""

    def __init__(
        self,
        log: ChangeLog,
        definitions: Mapping[str, DepartmentDefinition],
        *,
        base_url: str,
        keys: Mapping[str, str],
        clock: RemoteClock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.log = log
        self.definitions = definitions
        self.base_url = base_url
        self.keys = dict(keys)
        self.clock = clock
        self.transport = transport
        self.state = {code: _State() for code in definitions}
        self.random = random.Random()
        #: names this log's numbering in event ids (a restarted city numbers from 1 again)
        self.run_id = uuid.uuid4().hex[:12]
        self._clock_read = 0.0
        #: licences the departments' systems issued for their changes (exchange.licences)
        self.licences = 0
        log.pin()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until cancelled."""
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=10.0, transport=self.transport
        ) as client:
            while True:
                await self._keep_time(client)
                if not await self.publish_once(client):
                    await asyncio.sleep(_IDLE)

    async def publish_once(self, client: httpx.AsyncClient) -> int:
        """One call for each department with events waiting; how many events were posted."""
        posted = 0
        for code in self.definitions:
            state = self.state[code]
            if time.monotonic() < state.retry_at:
                continue
            try:
                posted += await self._publish(client, code, state)
            except httpx.HTTPError as exc:
                self._failed(state, f"{type(exc).__name__}: {exc}")
            except _Refused as exc:
                self._failed(state, str(exc))
        return posted

    async def _keep_time(self, client: httpx.AsyncClient) -> None:
        if self.clock is None or time.monotonic() - self._clock_read < 2.0:
            return
        self._clock_read = time.monotonic()
        key = next(iter(self.keys.values()), None)
        if key is None:
            return
        try:
            await self.clock.refresh(client, key)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            _log.warning("cannot read the platform clock: %s", exc)

    async def _publish(self, client: httpx.AsyncClient, code: str, state: _State) -> int:
        acked = self.log.acked(code) or 0
        pending = self.log.after(code, acked, MAX_EVENTS)
        if not pending:
            return 0
        key = self.keys.get(code)
        if key is None:
            raise _Refused(f"no API key for {code}")
        if state.codes is None:
            state.codes = await self._resolve(client, code, key)
        # A run of one topic: acknowledging it acknowledges everything before it.
        topic = pending[0].topic
        run = _prefix(pending, topic)
        resource = state.codes.get(topic)
        if resource is None:
            self._skip(code, state, run, f"topic {topic!r} is not in the catalog")
            return 0
        resp = await client.post(
            f"/api/v1/exchange/{resource}/changes",
            json={"events": [_wire(e, self.run_id) for e in run]},
            headers={"Authorization": f"Bearer {key}"},
        )
        state.calls += 1
        if resp.status_code == 202:
            # The department's system issues the licences its changes call for (a marriage,
            # an enterprise registered) before the run counts as handed over: a failure
            # retries the run, and the licences' references keep the retry from doubling.
            await self._issue_licences(client, code, key, run)
            self.log.ack(code, run[-1].seq)
            state.published += len(run)
            state.backoff, state.retry_at, state.last_error = 0.0, 0.0, None
            return len(run)
        message = _message(resp)
        if resp.status_code in _FINAL:
            self._skip(code, state, run, message)
            return 0
        raise _Refused(message)

    async def _issue_licences(
        self, client: httpx.AsyncClient, code: str, key: str, run: list[ChangeEvent]
    ) -> None:
        for event in run:
            body = licence_for(code, event.topic, event.kind, event.key, event.record)
            if body is None:
                continue
            resp = await client.post(
                "/api/v1/licences", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            if resp.status_code in (200, 201):
                self.licences += resp.status_code == 201
            elif resp.status_code in _FINAL or resp.status_code == 403:
                _log.warning("%s: licence for %s not issued: %s", code, event.key, _message(resp))
            else:
                raise _Refused(_message(resp))

    async def _resolve(self, client: httpx.AsyncClient, code: str, key: str) -> dict[str, str]:
        """The resource codes of the department's topics in the exchange's catalog, by slug."""
        wanted = {t.slug for t in self.definitions[code].topics}
        found: dict[str, str] = {}
        offset = 0
        while True:
            resp = await client.get(
                "/api/v1/catalog/topics",
                params={"provider": code, "limit": 200, "offset": offset},
                headers={"Authorization": f"Bearer {key}"},
            )
            if resp.status_code != 200:
                raise _Refused(_message(resp))
            page = resp.json()
            for item in page["items"]:
                if item.get("slug") in wanted:
                    found[item["slug"]] = item["resource_code"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"] or wanted <= set(found):
                return found

    # -- outcomes ---------------------------------------------------------------------

    def _skip(self, code: str, state: _State, run: list[ChangeEvent], why: str) -> None:
        _log.warning("%s: %d events of %s not publishable: %s", code, len(run), run[0].topic, why)
        self.log.ack(code, run[-1].seq)
        state.skipped += len(run)
        state.last_error = why

    def _failed(self, state: _State, why: str) -> None:
        state.failures += 1
        state.last_error = why
        # Exponential backoff with full jitter: many departments must not retry in step.
        state.backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, state.backoff * 2))
        state.retry_at = time.monotonic() + self.random.uniform(0, state.backoff)

    def status(self) -> dict[str, Any]:
        """Per department: published, skipped, calls, failures, backlog, last error."""
        return {
            "exchange": self.base_url,
            "licences_issued": self.licences,
            "departments": {
                code: {
                    "published": s.published,
                    "skipped": s.skipped,
                    "calls": s.calls,
                    "failures": s.failures,
                    "backlog": self.log.backlog(code),
                    "last_error": s.last_error,
                }
                for code, s in self.state.items()
            },
        }


class _Refused(Exception):
    """The exchange did not take the call now; try again later."""


def _prefix(events: list[ChangeEvent], topic: str) -> list[ChangeEvent]:
    out = []
    for e in events:
        if e.topic != topic:
            break
        out.append(e)
    return out


def _wire(e: ChangeEvent, run_id: str) -> dict[str, Any]:
    return {
        "event_id": f"{e.department}.{run_id}.{e.seq}",
        "key": e.key,
        "kind": e.kind,
        "changed_at": e.changed_at.isoformat(),
        "record": e.record,
    }


def _message(resp: httpx.Response) -> str:
    try:
        error = resp.json()["error"]
        return f"{resp.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{resp.status_code}: {resp.text[:200]}"
