"""Concurrent lookups of one endpoint share a provider call, and never each other's records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from exchange.broker.answers import LookupAnswer, split_lookup
from exchange.broker.batching import LookupBatcher
from exchange.broker.errors import ProviderBadResponse, ProviderUnavailable
from exchange.broker.routes import key_item

URL = "http://gaj/topics/household-registration/query"
KEY = "id_number"


class FakeProvider:
    """Answers like the mock departments: a record per known key, in key order."""

    def __init__(
        self, known: dict[str, dict[str, Any]], *, mangle: Callable[..., Any] | None = None
    ) -> None:
        self.known = known
        self.mangle = mangle
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None

    async def post_json(self, provider: str, url: str, body: bytes, request_id: str) -> bytes:
        keys = orjson.loads(body)["keys"]
        if url == OTHER:  # the lookup that keeps the broker busy
            await asyncio.sleep(0.01)
            return b'{"records": [], "not_found": ["W"]}'
        self.calls.append(keys)
        await asyncio.sleep(0.001)  # the network: other calls run meanwhile
        if self.fail is not None:
            raise self.fail
        answer: dict[str, Any] = {
            "records": [self.known[k] for k in keys if k in self.known],
            "not_found": [k for k in keys if k not in self.known and not k.startswith("bad")],
            "invalid": [{"key": k, "code": "invalid_id"} for k in keys if k.startswith("bad")],
        }
        if self.mangle is not None:
            answer = self.mangle(answer)
        return orjson.dumps(answer)


PEOPLE = {k: {KEY: k, "name": f"name of {k}"} for k in ("A", "B", "C", "D")}


def _batcher(provider: FakeProvider, **options: Any) -> LookupBatcher:
    return LookupBatcher(provider, **options)  # type: ignore[arg-type]


OTHER = "http://scjgj/topics/enterprise-registration/query"


async def _together(
    batcher: LookupBatcher, *calls: list[str], key_item: str | None = KEY
) -> list[Any]:
    """``calls`` made at once while the broker is busy: another lookup is in flight."""
    busy = batcher.lookup("scjgj", OTHER, ["W"], "busy", None)
    answers = await asyncio.gather(
        busy,
        *(batcher.lookup("gaj", URL, keys, f"r{i}", key_item) for i, keys in enumerate(calls)),
        return_exceptions=True,
    )
    return answers[1:]


def test_calls_of_one_loop_turn_share_one_provider_call_and_get_their_own_share() -> None:
    provider = FakeProvider(PEOPLE)
    batcher = _batcher(provider)
    answers = asyncio.run(_together(batcher, ["A"], ["B", "Z"], ["C", "A"], ["bad1"]))
    assert provider.calls == [["A", "B", "Z", "C", "bad1"]]  # once, keys deduplicated
    assert [[r[KEY] for r in a.records] for a in answers] == [["A"], ["B"], ["C", "A"], []]
    assert [a.not_found for a in answers] == [[], ["Z"], [], []]
    assert answers[3].invalid == [{"key": "bad1", "code": "invalid_id"}]
    assert answers[0].invalid == []
    assert (batcher.stats.shared, batcher.stats.coalesced) == (1, 4)


def test_a_call_alone_is_sent_as_it_is() -> None:
    provider = FakeProvider(PEOPLE)
    batcher = _batcher(provider)
    [answer] = asyncio.run(_together(batcher, ["A", "A"]))
    assert provider.calls == [["A", "A"]]
    assert [r[KEY] for r in answer.records] == ["A", "A"]
    assert batcher.stats.shared == 0


def test_an_idle_broker_sends_at_once() -> None:
    provider = FakeProvider(PEOPLE)
    batcher = _batcher(provider)

    async def run() -> list[Any]:
        first = asyncio.ensure_future(batcher.lookup("gaj", URL, ["A"], "r0", KEY))
        await asyncio.sleep(0)  # nothing else in flight: already on its way
        assert provider.calls == [["A"]]
        second = batcher.lookup("gaj", URL, ["B"], "r1", KEY)  # the first is in flight
        third = batcher.lookup("gaj", URL, ["C"], "r2", KEY)
        return await asyncio.gather(first, second, third)

    asyncio.run(run())
    assert provider.calls == [["A"], ["B", "C"]]


def test_big_calls_topics_without_one_key_item_and_full_batches_go_alone() -> None:
    provider = FakeProvider(PEOPLE)
    batcher = _batcher(provider, max_keys=3, max_call_keys=2)
    asyncio.run(_together(batcher, ["A", "B", "C"], ["D"]))  # the first is too big to share
    assert provider.calls == [["A", "B", "C"], ["D"]]
    provider.calls.clear()
    asyncio.run(_together(batcher, ["A"], ["B"], key_item=None))
    assert provider.calls == [["A"], ["B"]]
    provider.calls.clear()
    asyncio.run(_together(batcher, ["A", "B"], ["C"], ["D"]))  # at most 3 keys a call
    assert provider.calls == [["A", "B", "C"], ["D"]]


@pytest.mark.parametrize(
    "mangle",
    [
        # the provider upper-cases a checksum x: the record no longer names the key asked
        lambda a: {**a, "records": [{**r, KEY: r[KEY].lower()} for r in a["records"]]},
        # the key item is left out of the records
        lambda a: {**a, "records": [{"name": r["name"]} for r in a["records"]]},
        # a key is neither answered nor reported missing
        lambda a: {**a, "not_found": []},
    ],
    ids=["normalised-key", "no-key-item", "unaccounted-key"],
)
def test_an_answer_that_cannot_be_attributed_is_not_used(mangle: Callable[..., Any]) -> None:
    provider = FakeProvider(PEOPLE, mangle=mangle)
    batcher = _batcher(provider)
    answers = asyncio.run(_together(batcher, ["A"], ["B", "Z"]))
    # Each call asked again alone and got exactly the provider's answer to its own keys.
    assert sorted(map(tuple, provider.calls)) == [("A",), ("A", "B", "Z"), ("B", "Z")]
    assert all(isinstance(a, LookupAnswer) for a in answers)
    assert batcher.stats.unsplittable == 1
    provider.calls.clear()
    asyncio.run(_together(batcher, ["A"], ["B"]))  # and the endpoint is not shared again
    assert provider.calls == [["A"], ["B"]]


def test_a_provider_failure_is_every_calls_failure() -> None:
    provider = FakeProvider(PEOPLE)
    provider.fail = ProviderUnavailable("gaj", "provider 'gaj' is unreachable")
    answers = asyncio.run(_together(_batcher(provider), ["A"], ["B"], ["C"]))
    assert len(provider.calls) == 1
    assert all(isinstance(a, ProviderUnavailable) for a in answers)
    broken = FakeProvider(PEOPLE, mangle=lambda a: {"records": "nope"})
    answers = asyncio.run(_together(_batcher(broken), ["A"], ["B"]))
    assert all(isinstance(a, ProviderBadResponse) for a in answers)


def test_a_cancelled_leader_lets_the_others_ask_alone() -> None:
    provider = FakeProvider(PEOPLE)
    batcher = _batcher(provider)

    async def run() -> list[Any]:
        busy = asyncio.ensure_future(batcher.lookup("scjgj", OTHER, ["W"], "busy", None))
        leader = asyncio.ensure_future(batcher.lookup("gaj", URL, ["A"], "r0", KEY))
        other = asyncio.ensure_future(batcher.lookup("gaj", URL, ["B"], "r1", KEY))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # both joined, the shared call is on its way
        leader.cancel()
        return (await asyncio.gather(leader, other, busy, return_exceptions=True))[:2]

    cancelled, answer = asyncio.run(run())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert [r[KEY] for r in answer.records] == ["B"]
    assert provider.calls == [["A", "B"], ["B"]]


def test_split_never_hands_a_record_to_a_call_that_did_not_ask_for_it() -> None:
    answer = LookupAnswer(
        records=[PEOPLE["A"], PEOPLE["B"], {KEY: "B", "name": "second record of B"}],
        not_found=["Z"],
    )
    shares = split_lookup(answer, KEY, [["A"], ["B", "Z"], ["A", "B"]])
    assert shares is not None
    assert [[r["name"] for r in s.records] for s in shares] == [
        ["name of A"],
        ["name of B", "second record of B"],
        ["name of A", "name of B", "second record of B"],
    ]
    assert [s.not_found for s in shares] == [[], ["Z"], []]
    assert all(s.invalid is None for s in shares)  # the provider sent no invalid list
    # A record for a key nobody asked for: nothing can be attributed.
    stray = LookupAnswer(records=[PEOPLE["C"]], not_found=["A"])
    assert split_lookup(stray, KEY, [["A"]]) is None


class HeldProvider(FakeProvider):
    """A provider whose calls for key "H" answer only when the test releases them."""

    def __init__(self, known: dict[str, dict[str, Any]]) -> None:
        super().__init__(known)
        self.release = asyncio.Event()

    async def post_json(self, provider: str, url: str, body: bytes, request_id: str) -> bytes:
        if "H" in orjson.loads(body)["keys"]:
            self.calls.append(orjson.loads(body)["keys"])
            await self.release.wait()
            return b'{"records": [], "not_found": ["H"]}'
        return await super().post_json(provider, url, body, request_id)


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_lookups_arriving_while_the_endpoint_is_called_share_the_next_call() -> None:
    """Lookups of different loop turns gather while a call of their endpoint is under
    way, and go as one call when it ends; each gets its own share."""
    provider = HeldProvider(PEOPLE)
    batcher = _batcher(provider, max_wait=60)

    async def run() -> list[Any]:
        held = asyncio.ensure_future(batcher.lookup("gaj", URL, ["H"], "r0", KEY))
        await _turns(2)  # an idle broker sends at once: the call is under way
        calls = []
        for i, key in enumerate(["A", "B", "C"]):  # each in a loop turn of its own
            calls.append(asyncio.ensure_future(batcher.lookup("gaj", URL, [key], f"r{i}", KEY)))
            await _turns(3)
        assert provider.calls == [["H"]]  # the others wait for the endpoint's call
        provider.release.set()
        return await asyncio.gather(held, *calls)

    answers = asyncio.run(run())
    assert provider.calls == [["H"], ["A", "B", "C"]]
    assert [[r[KEY] for r in a.records] for a in answers] == [[], ["A"], ["B"], ["C"]]
    assert (batcher.stats.shared, batcher.stats.coalesced) == (1, 3)
    assert not batcher._inflight  # nothing left behind
    assert not batcher._slots


def test_a_call_that_does_not_end_holds_the_others_only_max_wait() -> None:
    provider = HeldProvider(PEOPLE)
    batcher = _batcher(provider, max_wait=0.001)

    async def run() -> list[Any]:
        held = asyncio.ensure_future(batcher.lookup("gaj", URL, ["H"], "r0", KEY))
        await _turns(2)
        answers = await asyncio.gather(
            batcher.lookup("gaj", URL, ["A"], "r1", KEY),
            batcher.lookup("gaj", URL, ["B"], "r2", KEY),
        )
        assert not held.done()  # answered while the held call is still under way
        provider.release.set()
        await held
        return list(answers)

    answers = asyncio.run(run())
    assert provider.calls == [["H"], ["A", "B"]]
    assert [[r[KEY] for r in a.records] for a in answers] == [["A"], ["B"]]
    assert not batcher._slots


def test_a_leader_cancelled_while_waiting_for_its_endpoint_lets_the_others_ask_alone() -> None:
    provider = HeldProvider(PEOPLE)
    batcher = _batcher(provider, max_wait=60)

    async def run() -> list[Any]:
        held = asyncio.ensure_future(batcher.lookup("gaj", URL, ["H"], "r0", KEY))
        await _turns(2)
        leader = asyncio.ensure_future(batcher.lookup("gaj", URL, ["A"], "r1", KEY))
        await _turns(2)  # waiting for the held call to end
        other = asyncio.ensure_future(batcher.lookup("gaj", URL, ["B"], "r2", KEY))
        await _turns(2)  # joined the leader's batch
        leader.cancel()
        answer = await other  # asked alone, while the held call is still under way
        provider.release.set()
        await held
        return [leader, answer]

    leader, answer = asyncio.run(run())
    assert leader.cancelled()
    assert [r[KEY] for r in answer.records] == ["B"]
    assert provider.calls == [["H"], ["B"]]
    assert not batcher._slots


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"field": "name"}, {"field": "id_number", "is_key": True}], "id_number"),
        ([{"field": "name"}], None),
        ([{"field": "a", "is_key": True}, {"field": "b", "is_key": True}], None),
        ([{"field": 7, "is_key": True}], None),
        (None, None),
        ("id_number", None),
    ],
)
def test_a_topic_shares_calls_by_its_one_key_item_only(items: Any, expected: str | None) -> None:
    """The route's key item (what lets lookups share a provider call): the one ``is_key``
    item of the topic's catalog items, and none with none, several, or no list."""
    assert key_item(items) == expected
