"""Verification without disclosure (核验): ``POST /api/v1/exchange/{front}/{seq}/verify``.

A consumer states what it was told (a citizen's declared name, address, income bracket)
and the broker says, per claimed item, whether the source agrees: ``match``,
``mismatch`` or ``unknown`` (the key is not on record, or the record holds no value for
the item). The value itself never leaves the broker: not in the answer, not in an error,
not in a log line, not in the audit, which records the items verified and how many keys
answered each outcome (:attr:`exchange.audit.entry.Entry.verdicts`).

Who may verify what: an item held by the consumer's current grant whose purpose is
``data_verification`` (数据校核), within the grant's validity and daily quota (one
record per key verified); and any item the provider's catalog entry marks
``verifiable``, which needs no grant at all: that is how a provider lets others match
what it does not share (对未获得授权的信息，平台可协助完成信息的匹配).

The provider is asked exactly as for a lookup (the same signed ``/query`` call, shared
with concurrent lookups of the topic by :class:`~exchange.broker.batching.LookupBatcher`);
only keys go to the provider, never the claimed values. Comparison rules:
:mod:`exchange.broker.matching`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from exchange.authz.policy import Decision
from exchange.broker.answers import LookupAnswer, split_lookup
from exchange.broker.call import BrokerCall
from exchange.broker.errors import DENIAL_STATUS, client_error
from exchange.broker.matching import MATCH, MISMATCH, UNKNOWN, Claim, ClaimError, judge, parse_claim
from exchange.broker.schemas import MAX_CHECKS, MAX_CLAIMS

if TYPE_CHECKING:
    from exchange.broker.inbound import Inbound
    from exchange.broker.routes import Route
    from exchange.broker.service import Broker

#: Longest key accepted.
MAX_KEY = 200
#: Provider calls in flight at once when each key has to be asked alone.
ALONE_CONCURRENCY = 8

FOUND = "found"
NOT_FOUND = "not_found"
INVALID_KEY = "invalid_key"

_ITEM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(slots=True)
class Check:
    """One key and its parsed claims."""

    key: str
    claims: dict[str, Claim]


def _bad(message: str, **detail: Any) -> Exception:
    return client_error("bad_input", message, 422, detail)


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY:
        raise _bad(f"{where}: a non-empty string of at most {MAX_KEY} characters", field=where)
    return value


def _claims(value: Any, where: str, route: Route) -> dict[str, Claim]:
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_CLAIMS:
        raise _bad(
            f"{where}: an object of 1 to {MAX_CLAIMS} claims, item → claimed value", field=where
        )
    unknown = sorted(i for i in value if i not in route.item_types)
    if unknown:
        # Item names are echoed (they are the catalog's, not a citizen's data), values never.
        named = [i for i in unknown if _ITEM_NAME.match(i)][:20]
        raise _bad(
            f"{where}: not items of {route.resource_code}: "
            + (", ".join(named) if named else "(names that are not item names)"),
            field=where,
            unknown_items=named,
        )
    out: dict[str, Claim] = {}
    for item, claimed in value.items():
        try:
            out[item] = parse_claim(item, route.item_types[item], claimed)
        except ClaimError as exc:
            raise _bad(f"{where}.{item}: {exc.problem}", field=f"{where}.{item}") from None
    return out


def parse_body(body: Any, route: Route) -> tuple[bool, list[Check]]:
    """``(single, checks)`` from a request body: ``{"key", "claims"}`` (single) or
    ``{"checks": [{"key", "claims"}, …]}`` (batch)."""
    if isinstance(body, dict) and set(body) == {"key", "claims"}:
        return True, [Check(_key(body["key"], "key"), _claims(body["claims"], "claims", route))]
    if isinstance(body, dict) and set(body) == {"checks"}:
        checks = body["checks"]
        if not isinstance(checks, list) or not 1 <= len(checks) <= MAX_CHECKS:
            raise _bad(f"checks: a list of 1 to {MAX_CHECKS:,} checks", field="checks")
        out = []
        for n, check in enumerate(checks):
            if not isinstance(check, dict) or set(check) != {"key", "claims"}:
                raise _bad(f'checks.{n}: {{"key": …, "claims": {{…}}}}', field=f"checks.{n}")
            out.append(
                Check(
                    _key(check["key"], f"checks.{n}.key"),
                    _claims(check["claims"], f"checks.{n}.claims", route),
                )
            )
        return False, out
    raise _bad(
        'the body is {"key": "…", "claims": {"item": value, …}} or '
        '{"checks": [{"key": "…", "claims": {…}}, …]}'
    )


async def _records_by_key(
    broker: Broker, route: Route, keys: list[str], request_id: str
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """key → (found | not_found | invalid_key, its records), from the provider."""
    url = route.url("/query")
    answer = await broker.lookups.lookup(route.provider, url, keys, request_id, route.key_item)
    if len(keys) == 1:
        return {keys[0]: _status_of(keys[0], answer)}
    shares = None
    if route.key_item is not None:
        shares = split_lookup(answer, route.key_item, [[k] for k in keys])
    if shares is not None:
        return {k: _status_of(k, share) for k, share in zip(keys, shares, strict=True)}
    # The answer cannot be attributed to keys with certainty (no single key item, or a
    # provider that normalises keys): each key is asked alone, a few at a time.
    gate = asyncio.Semaphore(ALONE_CONCURRENCY)

    async def alone(key: str) -> tuple[str, list[dict[str, Any]]]:
        async with gate:
            one = await broker.lookups.lookup(route.provider, url, [key], request_id, None)
        return _status_of(key, one)

    found = await asyncio.gather(*(alone(k) for k in keys))
    return dict(zip(keys, found, strict=True))


def _status_of(key: str, answer: LookupAnswer) -> tuple[str, list[dict[str, Any]]]:
    records = [r for r in answer.records if isinstance(r, dict)]
    if records:
        return FOUND, records
    if any(isinstance(e, dict) and e.get("key") == key for e in answer.invalid or ()):
        return INVALID_KEY, []
    return NOT_FOUND, []


def _tally(verdicts: dict[str, dict[str, int]], item: str, outcome: str) -> None:
    counts = verdicts.setdefault(item, {})
    counts[outcome] = counts.get(outcome, 0) + 1


async def verify(broker: Broker, inbound: Inbound, front: str, seq: str) -> bytes:
    """Verify the body's claims; returns the JSON answer, raises (audited) errors."""
    call: BrokerCall | None = None
    decision: Decision | None = None
    try:
        call = broker._begin(inbound, "verify")
        try:
            body = orjson.loads(inbound.body)
        except orjson.JSONDecodeError:
            raise client_error("bad_input", "the body is not valid JSON", 400) from None
        route = await broker._route(call, front, seq)
        if route.federated:
            # The peer platform answers lookups under its own grants and filters the items
            # itself; it offers no verification, so none is pretended here.
            raise client_error(
                "not_verifiable",
                f"{route.resource_code} is provided by the peer platform (a mounted topic): "
                "verification is offered only for this platform's own topics",
                409,
            )
        single, checks = parse_body(body, route)
        claimed = sorted({item for check in checks for item in check.claims})
        call.items = claimed
        keys = list(dict.fromkeys(check.key for check in checks))
        needs_grant = [item for item in claimed if item not in route.verifiable]
        if needs_grant:
            decision = await _check(broker, call, needs_grant, len(keys))
        broker._endpoint(route)
        if decision is not None:
            broker.holds.hold(call, decision, len(keys))
        try:
            by_key = await _records_by_key(broker, route, keys, call.request_id)
        finally:
            if decision is not None:
                broker.holds.release(call, decision)
        verdicts: dict[str, dict[str, int]] = {}
        results = []
        for check in checks:
            status, records = by_key[check.key]
            outcomes = {}
            for item, claim in check.claims.items():
                outcome = judge(claim, item, records) if records else UNKNOWN
                outcomes[item] = outcome
                _tally(verdicts, item, outcome)
            results.append({"key": check.key, "status": status, "outcomes": outcomes})
        found = sum(1 for status, _ in by_key.values() if status == FOUND)
        call.records = found
        call.verdicts = verdicts
        if found and decision is not None and decision.grant_id is not None:
            broker.grants.consume(decision.grant_id, found)
        out: dict[str, Any]
        if single:
            out = {"request_id": call.request_id, **results[0]}
        else:
            summary: dict[str, int] = {MATCH: 0, MISMATCH: 0, UNKNOWN: 0}
            for counts in verdicts.values():
                for said, n in counts.items():
                    summary[said] += n
            out = {"request_id": call.request_id, "results": results, "summary": summary}
        payload = orjson.dumps(out)
        await broker._finish(call, "ok", 200)
        return payload
    except Exception as exc:
        if call is None:
            call = BrokerCall(
                inbound.request_id, "verify", time.perf_counter(), inbound.correlation_id
            )
        raise await broker._fail(call, exc) from None


async def _check(broker: Broker, call: BrokerCall, items: Sequence[str], keys: int) -> Decision:
    """The grant's word on the items that are not verifiable without one."""
    from starlette.concurrency import run_in_threadpool

    assert call.resource_code is not None
    grants = broker.grants
    if grants.fresh:
        decision = grants.check_verification(call.consumer, call.resource_code, items, records=keys)
    else:
        decision = await run_in_threadpool(
            grants.check_verification, call.consumer, call.resource_code, items, records=keys
        )
    if not decision.allowed:
        raise client_error(
            decision.reason,
            f"{call.consumer} may not verify {', '.join(items)} of {call.resource_code}: "
            f"{decision.reason} (an item is verified under a grant for data_verification "
            "that holds it, or when the provider's catalog marks it verifiable)",
            DENIAL_STATUS.get(decision.reason, 403),
            {"reason": decision.reason, "grant_id": decision.grant_id, "items": list(items)},
        )
    return decision
