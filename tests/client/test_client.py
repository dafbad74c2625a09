"""The SDK against a real exchange over HTTP: typed answers, the whole application flow,
exchange calls, exports, audit, and errors that mirror the server's codes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.harness import (
    OPERATOR_KEY,
    free_port,
    seed_exchange,
    serve,
    settings_for,
    topic_code,
)

import exchange.client as sdk
from exchange.app import build_context, create_app
from exchange.client import (
    AsyncExchangeClient,
    AuthenticationFailed,
    ExchangeClient,
    NotFound,
    PermissionDenied,
    TransportError,
)
from exchange.client._errors import error_from
from exchange.departments.app import create_departments_app
from exchange.departments.city import City
from exchange.security import demo_key

HOUSEHOLD = ["id_number", "name", "sex", "birth_date"]


@dataclass
class Live:
    url: str
    household: str
    vehicles: str
    tax_paid: str
    person: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("client")
    settings = settings_for(f"sqlite:///{tmp}/exchange.db")
    with serve(create_departments_app(settings)) as dept_url:
        ctx = build_context(settings)
        app = create_app(settings, ctx=ctx)
        seed_exchange(ctx, f"{dept_url}/departments")
        codes = {
            slug: topic_code(ctx, slug)
            for slug in ("household-registration", "vehicle-registration", "tax-paid")
        }
        person = City(settings.seed, settings.population, settings.enterprises).id_number_of(7)
        with serve(app) as url:
            yield Live(
                url,
                codes["household-registration"],
                codes["vehicle-registration"],
                codes["tax-paid"],
                person,
            )
        ctx.db.dispose()


def client(live: Live, code: str | None) -> ExchangeClient:
    return ExchangeClient(live.url, demo_key(OPERATOR_KEY, code) if code else OPERATOR_KEY)


def until() -> dt.date:
    return dt.date.today() + dt.timedelta(days=200)


def test_catalog_search_and_get_are_typed(live: Live) -> None:
    with client(live, "mzj") as mzj:
        page = mzj.search_topics(provider="gaj", limit=50)
        assert page.total >= 2
        codes = {t.resource_code for t in page.items}
        assert live.household in codes
        topic = mzj.get_topic(live.household)
        assert topic.provider == "gaj"
        assert {i.field for i in topic.items} >= set(HOUSEHOLD)


def test_errors_mirror_the_server_codes(live: Live) -> None:
    with client(live, "mzj") as mzj:
        with pytest.raises(NotFound) as missing:
            mzj.get_topic("101001001/999999")
        assert missing.value.status == 404
        assert missing.value.request_id
        with pytest.raises(PermissionDenied) as denied:
            mzj.query(live.tax_paid, ["91440101MA59XXXX0X"])
        assert denied.value.code.startswith("client.")
        assert denied.value.side == "client"
    with ExchangeClient(live.url, "exk_nobody_0000") as stranger:
        with pytest.raises(AuthenticationFailed) as bad:
            stranger.query(live.household, [live.person])
        assert bad.value.status == 401
        assert bad.value.code == "client.bad_key"


def test_unconditional_apply_query_export_and_audit(live: Live) -> None:
    with client(live, "mzj") as mzj, client(live, None) as operator:
        made = mzj.apply(
            live.household,
            HOUSEHOLD,
            purpose="居民家庭经济状况核对",
            legal_function="《社会救助暂行办法》第十一条",
            valid_until=until(),
        )
        assert made.status == "approved"
        assert made.grant_id is not None
        assert mzj.get_grant(made.grant_id).items == sorted(HOUSEHOLD)

        answer = None
        for _ in range(30):  # the broker's grant cache follows the commit within ms
            try:
                answer = mzj.query(live.household, [live.person], case="低保核对 SDK-1")
                break
            except PermissionDenied:
                asyncio.run(asyncio.sleep(0.05))
        assert answer is not None
        assert [r["id_number"] for r in answer.records] == [live.person]
        assert set(answer.records[0]) <= set(HOUSEHOLD)

        records = list(mzj.export(live.household, limit=300, items=["id_number", "name"]))
        assert len(records) == 300
        assert all(set(r) <= {"id_number", "name"} for r in records)

        entry = operator.audit_entries(request_id=answer.request_id).entries[0]
        assert entry.case == "低保核对 SDK-1"
        assert entry.outcome == "ok"
        assert operator.verify_audit().ok
        assert operator.clock().today >= made.valid_from
        assert mzj.audit_stats().total.records >= 301


def test_review_narrowing_refusal_and_dispute(live: Live) -> None:
    with client(live, "mzj") as mzj, client(live, "gaj") as gaj, client(live, None) as op:
        asked = mzj.apply(
            live.vehicles,
            ["plate_number", "owner_id_number", "brand"],
            purpose="核对名下车辆",
            legal_function="《社会救助暂行办法》第十一条",
            valid_until=until(),
        )
        assert asked.status == "pending_review"
        pending = gaj.list_applications(role="provider", status="pending_review").items
        assert asked.id in {a.id for a in pending}
        narrowed = gaj.approve(
            asked.id, items=["plate_number", "owner_id_number"], reason="品牌与核对无关"
        )
        assert narrowed.status in {"approved", "partially_approved"}
        assert narrowed.grant_id is not None

        second = mzj.apply(
            live.vehicles,
            ["vin"],
            purpose="核对车辆识别代号",
            legal_function="《社会救助暂行办法》第十一条",
            valid_until=until(),
        )
        refused = gaj.reject(second.id, reason="车辆识别代号不属于核对所需")
        assert refused.status == "returned"
        dispute = mzj.dispute(second.id, reason="核对车辆价值需要车辆识别代号")
        dispute = mzj.post_message(dispute.id, "已附申请人书面授权")
        assert [m.body for m in dispute.messages][-1] == "已附申请人书面授权"
        decided = op.decide(dispute.id, "uphold", reason="车牌号码已足以核对")
        assert decided.decision == "uphold"
        assert op.get_dispute(dispute.id).status == decided.status


def test_async_client_does_the_same(live: Live) -> None:
    async def run() -> tuple[int, int, str]:
        key = demo_key(OPERATOR_KEY, "rsj")
        async with AsyncExchangeClient(live.url, key) as rsj:
            page = await rsj.search_topics(provider="gaj")
            made = await rsj.apply(
                live.household,
                ["id_number", "name"],
                purpose="社保登记核对",
                legal_function="《社会保险法》",
                valid_until=until(),
            )
            assert made.grant_id is not None
            answer = None
            for _ in range(30):
                try:
                    answer = await rsj.query(live.household, [live.person])
                    break
                except PermissionDenied:
                    await asyncio.sleep(0.05)
            assert answer is not None
            exported = [r async for r in rsj.export(live.household, limit=50)]
            return page.total, len(exported), answer.records[0]["id_number"]

    total, exported, found = asyncio.run(run())
    assert total >= 2
    assert exported == 50
    assert found == live.person


def test_an_unreachable_exchange_is_a_transport_error() -> None:
    with (
        ExchangeClient(f"http://127.0.0.1:{free_port()}", "k", timeout=2) as nowhere,
        pytest.raises(TransportError),
    ):
        nowhere.search_topics()


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "client.no_grant", sdk.PermissionDenied),
        (429, "client.quota_exceeded", sdk.QuotaExceeded),
        (410, "client.topic_retired", sdk.Gone),
        (504, "provider.timeout", sdk.ProviderTimeout),
        (502, "provider.bad_response", sdk.ProviderError),
        (503, "broker.audit_unavailable", sdk.ServerError),
        (422, "validation_failed", sdk.BadRequest),
    ],
)
def test_error_classes_follow_codes_and_status(
    status: int, code: str, expected: type[sdk.ExchangeAPIError]
) -> None:
    body = {"error": {"code": code, "message": "m", "request_id": "r1", "detail": {"x": 1}}}
    error = error_from(status, body)
    assert type(error) is expected
    assert (error.status, error.code, error.request_id) == (status, code, "r1")
    assert error.detail == {"x": 1}
    assert error.side == (code.split(".")[0] if "." in code else None)


def test_a_non_json_error_still_raises_by_status() -> None:
    error = error_from(502, None)
    assert isinstance(error, sdk.ServerError)
    assert error.code == "http_error"


def test_public_names() -> None:
    # A change to the SDK's public surface must be deliberate: update this list with it.
    assert sorted(sdk.__all__) == sorted(
        [
            "DEFAULT_URL",
            "AsyncExchangeClient",
            "AuthenticationFailed",
            "BadRequest",
            "Conflict",
            "ExchangeAPIError",
            "ExchangeClient",
            "ExchangeError",
            "ExchangeSignatureMiddleware",
            "ExportInterrupted",
            "Gone",
            "LicenceVerifier",
            "NotFound",
            "PermissionDenied",
            "PlatformClock",
            "ProviderError",
            "ProviderSigner",
            "ProviderTimeout",
            "ProviderVerifier",
            "PushReceiver",
            "QuotaExceeded",
            "ServerError",
            "SignatureError",
            "SignedCall",
            "StatusList",
            "TransportError",
            "Verification",
            "VerifierPool",
            "fetch_licence_verifier",
            "load_licence_verifier",
            "verify_many",
        ]
    )
