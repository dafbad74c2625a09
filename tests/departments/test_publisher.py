"""The departments' publisher: order, acknowledgement only on acceptance, retries, skips."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from exchange.departments.changes import ChangeLog
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.publisher import Publisher, RemoteClock

pytestmark = pytest.mark.anyio
AT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
CODES = {
    "marriage-registration": "101001002/000001",
    "cremation-records": "101001002/000003",
}


class FakeExchange:
    """The exchange's catalog search and changes endpoint, answering as told."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.posts: list[tuple[str, list[dict[str, object]]]] = []
        self.keys: set[str] = set()
        self.offset = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.keys.add(request.headers["authorization"])
        if request.url.path == "/api/v1/catalog/topics":
            items = [{"slug": s, "resource_code": c} for s, c in CODES.items()]
            return httpx.Response(200, json={"total": 2, "offset": 0, "limit": 200, "items": items})
        if request.url.path == "/api/v1/clock":
            return httpx.Response(200, json={"offset_seconds": self.offset})
        status = self.answers.pop(0) if self.answers else 202
        resource = request.url.path.removeprefix("/api/v1/exchange/").removesuffix("/changes")
        events = json.loads(request.content)["events"]
        self.posts.append((resource, events))
        if status == 202:
            return httpx.Response(202, json={"resource_code": resource, "accepted": len(events)})
        return httpx.Response(
            status, json={"error": {"code": "x", "message": "refused", "request_id": "r"}}
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _publisher(
    definitions: dict[str, DepartmentDefinition], fake: FakeExchange
) -> tuple[Publisher, ChangeLog]:
    mzj = {"mzj": definitions["mzj"]}
    log = ChangeLog(mzj, retain=100)
    pub = Publisher(
        log,
        mzj,
        base_url="http://exchange.test",
        keys={"mzj": "exk_mzj_key"},
        transport=httpx.MockTransport(fake),
    )
    return pub, log


def _append(log: ChangeLog, topic: str, key: str) -> None:
    log.append("mzj", topic, key, "marriage", AT, {"id_number": key})


async def test_runs_of_one_topic_in_order_acknowledged_when_accepted(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    fake = FakeExchange()
    pub, log = _publisher(definitions, fake)
    for k in ("a", "b"):
        _append(log, "marriage-registration", k)
    _append(log, "cremation-records", "c")
    _append(log, "marriage-registration", "d")
    async with httpx.AsyncClient(base_url=pub.base_url, transport=pub.transport) as c:
        while await pub.publish_once(c):
            pass
    assert [(r, [e["key"] for e in evs]) for r, evs in fake.posts] == [
        (CODES["marriage-registration"], ["a", "b"]),
        (CODES["cremation-records"], ["c"]),
        (CODES["marriage-registration"], ["d"]),
    ]
    first = fake.posts[0][1][0]
    assert first == {
        "event_id": f"mzj.{pub.run_id}.1",
        "key": "a",
        "kind": "marriage",
        "changed_at": AT.isoformat(),
        "record": {"id_number": "a"},
    }
    assert fake.keys == {"Bearer exk_mzj_key"}
    assert log.backlog("mzj") == 0
    assert pub.status()["departments"]["mzj"]["published"] == 4


async def test_an_outage_is_retried_and_nothing_is_lost(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    fake = FakeExchange()
    fake.answers = [503, 500]
    pub, log = _publisher(definitions, fake)
    _append(log, "marriage-registration", "a")
    async with httpx.AsyncClient(base_url=pub.base_url, transport=pub.transport) as c:
        assert await pub.publish_once(c) == 0
        assert log.backlog("mzj") == 1
        state = pub.state["mzj"]
        assert state.failures == 1
        assert state.last_error is not None
        assert "503" in state.last_error
        assert state.retry_at > 0  # backing off, with jitter
        for _ in range(200):
            state.retry_at = 0.0  # the test does not wait out the backoff
            if await pub.publish_once(c):
                break
    assert log.backlog("mzj") == 0
    assert [evs[0]["key"] for _, evs in fake.posts] == ["a", "a", "a"]
    # Every attempt carries the same event id, the exchange's idempotency key: a call that
    # committed but answered late is not written twice.
    sent = {evs[0]["event_id"] for _, evs in fake.posts}
    assert sent == {f"mzj.{pub.run_id}.1"}


async def test_a_final_refusal_is_skipped_and_counted(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    fake = FakeExchange()
    fake.answers = [422]
    pub, log = _publisher(definitions, fake)
    _append(log, "marriage-registration", "bad")
    _append(log, "cremation-records", "good")
    async with httpx.AsyncClient(base_url=pub.base_url, transport=pub.transport) as c:
        while await pub.publish_once(c) or log.backlog("mzj"):
            pass
    status = pub.status()["departments"]["mzj"]
    assert status["skipped"] == 1
    assert status["published"] == 1
    assert log.backlog("mzj") == 0


async def test_remote_clock_follows_the_exchange() -> None:
    fake = FakeExchange()
    fake.offset = 86_400.0
    clock = RemoteClock()
    async with httpx.AsyncClient(
        base_url="http://exchange.test", transport=httpx.MockTransport(fake)
    ) as c:
        await clock.refresh(c, "exk_any")
    ahead = clock() - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < ahead <= dt.timedelta(days=1)
