"""The libraries over real HTTP: gathering through the broker, lookups, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from tests.e2e.harness import OPERATOR, OPERATOR_KEY, apply, key_of, topic_code
from tests.e2e.test_lean_e2e import _raw
from tests.libraries.conftest import Site
from tests.polling import wait_until

from exchange.audit.models import AuditEntry
from exchange.client import AsyncExchangeClient, ExchangeClient
from exchange.client._errors import ExchangeAPIError
from exchange.departments.city import City
from exchange.libraries.models import LibraryRecord, LibrarySource
from exchange.security import demo_key

CITY = City(seed=2020, population=3_000, enterprises=600)


def _sources(site: Site) -> dict[str, dict[str, Any]]:
    libs = site.http.get("/api/v1/libraries", headers=OPERATOR).json()
    return {
        s["resource_code"]: s | {"library": lib["library"]} for lib in libs for s in lib["sources"]
    }


def _held(site: Site, source_id: int) -> int:
    with site.ctx.db.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(LibraryRecord)
                .where(LibraryRecord.source_id == source_id)
            )
            or 0
        )


def test_full_load_gathers_every_granted_source_with_counts(gathered: Site) -> None:
    sources = _sources(gathered)
    household = sources[topic_code(gathered.ctx, "household-registration")]
    assert household["state"] == "done"
    assert household["provider"] == "gaj"
    assert household["total_rows"] == household["watermark"] == CITY.population
    assert _held(gathered, household["id"]) == CITY.population
    enterprise = sources[topic_code(gathered.ctx, "enterprise-registration")]
    assert _held(gathered, enterprise["id"]) == CITY.enterprises
    # Every source granted and read to its end; what each holds is what it gathered
    # (records, not rows: a source has no record for some rows).
    for s in sources.values():
        assert s["state"] == "done", s
        assert s["watermark"] == s["total_rows"]
        assert _held(gathered, s["id"]) == s["pass_gathered"] > 0
    libs = gathered.http.get("/api/v1/libraries", headers=key_of("gjj")).json()
    person = next(lib for lib in libs if lib["library"] == "person")
    assert person["gathered"] == sum(
        s["gathered"] for s in sources.values() if s["library"] == "person"
    )
    # The clean city is consistent: no conflicts without noise.
    assert person["conflicts"]["open"] == 0
    metrics = gathered.http.get("/metrics", headers=OPERATOR).text
    assert (
        f'exchange_library_gathered_total{{library="person"}} {float(person["gathered"])}'
        in metrics
    )
    assert "exchange_library_records_gathered_total" in metrics


def test_gathering_goes_through_the_broker_and_is_audited(gathered: Site) -> None:
    with gathered.ctx.db.sessions() as session:
        exports = session.scalars(
            select(AuditEntry).where(AuditEntry.consumer == "zsj", AuditEntry.kind == "export")
        ).all()
    assert exports
    assert {e.case for e in exports} == {"基础信息库汇集"}
    household = topic_code(gathered.ctx, "household-registration")
    assert sum(e.records for e in exports if e.resource_code == household) >= CITY.population


def test_incremental_pass_reads_nothing_new_from_a_static_city(gathered: Site) -> None:
    before = _sources(gathered)
    status = gathered.gather()
    assert status["last"]["total"] == 0
    after = _sources(gathered)
    for code, s in after.items():
        assert s["watermark"] == before[code]["watermark"]
        assert s["gathered"] == before[code]["gathered"]


def test_lookup_assembles_granted_elements_with_source_and_time(gathered: Site) -> None:
    person = CITY.person(CITY.sample_indices(1, seed=5)[0])
    resp = gathered.http.post(
        "/api/v1/libraries/person/query",
        json={"keys": [person.id_number]},
        headers=key_of("gjj"),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    [record] = body["records"]
    name = record["elements"]["person.name"]
    assert name["value"] == person.name
    assert name["provider"] == "gaj"
    assert name["resource_code"] == topic_code(gathered.ctx, "household-registration")
    assert name["refreshed_at"]
    # gjj holds no grant on the conditional sources: their elements are withheld.
    assert "marriage.registration_type" in body["withheld"]
    assert not any(e.startswith("marriage.") for e in record["elements"])
    # The source itself sees its own conditional elements.
    married = next(
        p for p in map(CITY.person, range(0, CITY.population, 2)) if p.married_on is not None
    )
    own = gathered.http.get(
        f"/api/v1/libraries/person/records/{married.id_number}", headers=key_of("mzj")
    ).json()
    assert "marriage.registration_type" in own["records"][0]["elements"]
    assert "marriage.registration_type" not in own["withheld"]


def test_a_grant_on_the_source_topic_opens_its_conditional_elements(gathered: Site) -> None:
    code = topic_code(gathered.ctx, "social-insurance-enrolment")
    employed = next(
        p for p in map(CITY.person, range(CITY.population)) if CITY.employer_of(p) is not None
    )
    url = f"/api/v1/libraries/person/records/{employed.id_number}"
    before = gathered.http.get(url, headers=key_of("ybj")).json()
    assert "social_insurance.status" in before["withheld"]
    app = apply(gathered.http, "ybj", code, ["id_number", "status"])
    resp = gathered.http.post(
        f"/api/v1/applications/{app['id']}/approve", json={}, headers=key_of("rsj")
    )
    assert resp.status_code == 200, resp.text

    def opened() -> dict[str, Any] | None:
        answer: dict[str, Any] = gathered.http.get(url, headers=key_of("ybj")).json()
        return answer if "social_insurance.status" in answer["records"][0]["elements"] else None

    after = wait_until(opened, "the grant to open social_insurance.status")
    assert after["records"][0]["elements"]["social_insurance.status"]["provider"] == "rsj"
    # Only the granted item: the contribution base stays withheld.
    assert "social_insurance.contribution_base" in after["withheld"]


def test_a_bank_sees_basic_elements_only_under_a_reviewed_grant(gathered: Site) -> None:
    """Basic elements are unconditional for government departments only: a bank gets
    none without a grant, applies (the provider reviews: ``not_government``), and once
    household registration grants it the name it sees that element, and only that."""
    person = CITY.person(CITY.sample_indices(1, seed=11)[0])
    url = f"/api/v1/libraries/person/records/{person.id_number}"
    before = gathered.http.get(url, headers=key_of("icbc")).json()
    assert before["records"] == []
    assert before["withheld_reasons"]["person.name"] == "not_government"
    assert before["withheld_reasons"]["marriage.registration_type"] == "conditional"
    code = topic_code(gathered.ctx, "household-registration")
    app = apply(gathered.http, "icbc", code, ["id_number", "name"])
    assert {d["reason_code"] for d in app["decisions"]} == {"not_government"}
    resp = gathered.http.post(
        f"/api/v1/applications/{app['id']}/approve", json={}, headers=key_of("gaj")
    )
    assert resp.status_code == 200, resp.text

    def opened() -> dict[str, Any] | None:
        answer: dict[str, Any] = gathered.http.get(url, headers=key_of("icbc")).json()
        return answer if answer["records"] else None

    after = wait_until(opened, "the bank's grant to open the name")
    elements = after["records"][0]["elements"]
    assert set(elements) == {"person.name"}
    assert elements["person.name"]["value"] == person.name
    assert after["withheld_reasons"]["person.sex"] == "not_government"
    # A department sees the same record's basic elements without applying.
    dept = gathered.http.get(url, headers=key_of("gjj")).json()
    assert {"person.name", "person.sex"} <= set(dept["records"][0]["elements"])
    assert "person.sex" not in dept["withheld"]


def test_enterprise_lookup_and_missing_and_malformed_keys(gathered: Site) -> None:
    code = CITY.sample_credit_codes(1, seed=2)[0]
    resp = gathered.http.post(
        "/api/v1/libraries/enterprise/query",
        json={"keys": [code, "91110108551385082Q", "91110108551385082A"]},
        headers=key_of("swj"),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["key"] for r in body["records"]] == [code]
    ent = CITY.enterprise_by_credit_code(code)
    assert ent is not None
    assert body["records"][0]["elements"]["enterprise.name"]["value"] == ent.name
    assert body["not_found"] == ["91110108551385082Q"]
    assert [i["key"] for i in body["invalid"]] == ["91110108551385082A"]
    # The legal representative's ID number is conditional at its source.
    assert "enterprise.legal_representative_id_number" in body["withheld"]


def _lean_served(site: Site) -> int:
    served: int = site.app.front.libraries.lean_served
    return served


def test_lean_and_ordinary_paths_answer_alike(gathered: Site) -> None:
    """A lookup whose body arrives with its head is answered on the HTTP protocol's lean
    path; one whose body comes later goes the ASGI way: the same answer, headers, errors
    and audit either way."""
    body = orjson.dumps({"keys": [CITY.id_number_of(11), CITY.id_number_of(12)]})
    headers = {**key_of("gjj"), "X-Request-Id": "caller-9", "Content-Type": "application/json"}
    path = "/api/v1/libraries/person/query"
    served = _lean_served(gathered)
    lean = _raw(gathered, path, body, headers, split=False)
    assert _lean_served(gathered) == served + 1
    ordinary = _raw(gathered, path, body, headers, split=True)
    assert _lean_served(gathered) == served + 1  # the split body went the ASGI way
    for status, found, answer in (lean, ordinary):
        assert status == 200, answer
        assert found["content-type"] == "application/json"
        assert found["x-request-id"] == answer["request_id"]
        assert found["x-correlation-id"] == "caller-9"
        assert [r["key"] for r in answer["records"]] == [
            CITY.id_number_of(11),
            CITY.id_number_of(12),
        ]
        with gathered.ctx.db.sessions() as session:
            entry = wait_until(
                lambda rid=answer["request_id"]: session.scalar(
                    select(AuditEntry).where(AuditEntry.request_id == rid)
                ),
                "the lookup's audit entry",
            )
        assert (entry.kind, entry.consumer, entry.records) == ("library", "gjj", 2)
    assert lean[2]["request_id"] != ordinary[2]["request_id"]
    assert {k: v for k, v in lean[2].items() if k != "request_id"} == {
        k: v for k, v in ordinary[2].items() if k != "request_id"
    }
    # Errors keep the one model on the lean path; a GET by key is served there too.
    status, found, answer = _raw(gathered, path, body, OPERATOR, split=False)
    assert status == 403
    assert answer["error"]["code"] == "not_a_department"
    assert answer["error"]["request_id"] == found["x-request-id"]
    status, _, answer = _raw(gathered, path, b"{not json", key_of("gjj"), split=False)
    assert status == 422
    assert answer["error"]["code"] == "bad_input"
    assert _lean_served(gathered) == served + 3
    one = gathered.http.get(
        f"/api/v1/libraries/person/records/{CITY.id_number_of(11)}", headers=key_of("gjj")
    )
    assert one.status_code == 200
    assert one.json()["records"] == lean[2]["records"][:1]
    assert _lean_served(gathered) == served + 4


def test_lookup_refusals_are_errors_and_audited(gathered: Site) -> None:
    http = gathered.http
    pid = CITY.id_number_of(7)
    url = "/api/v1/libraries/person/query"
    assert http.post(url, json={"keys": [pid]}).status_code == 401
    resp = http.post(url, json={"keys": [pid]}, headers=OPERATOR)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "not_a_department"
    for body in ({"keys": []}, {"keys": [pid] * 101}, {"ids": [pid]}, {"keys": ["a b"]}):
        resp = http.post(url, json=body, headers=key_of("gjj"))
        assert resp.status_code == 422, (body, resp.text)
    resp = http.post(url, content=b"{not json", headers=key_of("gjj"))
    assert resp.status_code == 422
    assert http.post(
        "/api/v1/libraries/nobody/query", json={"keys": [pid]}, headers=key_of("gjj")
    ).status_code in (404, 422)
    assert http.get("/api/v1/libraries/person/query", headers=key_of("gjj")).status_code == 405
    rid = http.post(url, json={"keys": [pid]}, headers=key_of("gjj")).json()["request_id"]
    with gathered.ctx.db.sessions() as session:

        def audited() -> Sequence[AuditEntry] | None:
            session.expire_all()
            entries = session.scalars(
                select(AuditEntry).where(AuditEntry.kind == "library", AuditEntry.consumer == "gjj")
            ).all()
            return entries if any(e.request_id == rid for e in entries) else None

        entries = wait_until(audited, "the lookup's audit entry")
    outcomes = {e.outcome for e in entries}
    assert {"ok", "bad_input"} <= outcomes
    entry = next(e for e in entries if e.request_id == rid)
    assert entry.resource_code == "lib/person"
    assert "person.name" in entry.items
    assert entry.records == 1


def test_gather_control_is_the_operators(gathered: Site) -> None:
    http = gathered.http
    assert http.get("/api/v1/libraries/gather", headers=key_of("gjj")).status_code == 403
    assert http.post("/api/v1/libraries/gather", json={}, headers=key_of("gjj")).status_code == 403
    assert (
        http.post("/api/v1/libraries/gather", json={"library": "x"}, headers=OPERATOR).status_code
        == 422
    )
    with gathered.ctx.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LibrarySource)) == len(
            _sources(gathered)
        )


def test_the_sdk_reads_the_libraries(gathered: Site) -> None:
    code = CITY.sample_credit_codes(1, seed=9)[0]
    with ExchangeClient(gathered.url, demo_key(OPERATOR_KEY, "swj")) as swj:
        answer = swj.enterprise(code)
        assert answer.records[0].elements["enterprise.name"].provider == "scjgj"
        person = swj.person(CITY.id_number_of(11))
        assert person.records[0].key == CITY.id_number_of(11)
        batch = swj.library_query("person", [CITY.id_number_of(1), CITY.id_number_of(2)])
        assert len(batch.records) == 2
        assert swj.library_conflicts("person").total == 0
        with pytest.raises(ExchangeAPIError) as caught:
            swj.resolve_library_conflict(424242, "dismissed")
        assert caught.value.status == 404

    async def run() -> None:
        async with AsyncExchangeClient(gathered.url, demo_key(OPERATOR_KEY, "gjj")) as gjj:
            got = await gjj.enterprise(code)
            assert (
                got.records[0].elements["enterprise.name"].value
                == answer.records[0].elements["enterprise.name"].value
            )

    asyncio.run(run())


def test_change_events_refresh_the_library_incrementally(gathered: Site) -> None:
    code = topic_code(gathered.ctx, "household-registration")
    source = _sources(gathered)[code]
    assert source["subscription_id"] is not None
    person = CITY.person(42)
    lookup = f"/api/v1/libraries/person/records/{person.id_number}"
    before = gathered.http.get(lookup, headers=key_of("gjj")).json()["records"][0]["elements"]
    moved = {
        "id_number": person.id_number,
        "name": person.name,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "ethnicity": person.ethnicity,
        "household_number": "440100999999",
        "relation_to_head": "户主",
        "registered_address": "广州市海珠区新港西路135号",
        "registered_street": "新港街道",
        "status": "正常",
    }
    resp = gathered.http.post(
        f"/api/v1/exchange/{code}/changes",
        json={
            "events": [
                {
                    "key": person.id_number,
                    "kind": "household_move",
                    "changed_at": "2026-12-01T08:00:00+08:00",
                    "record": moved,
                }
            ]
        },
        headers=key_of("gaj"),
    )
    assert resp.status_code in (200, 201, 202), resp.text
    status = gathered.gather()
    assert status["last"]["events"][code] == 1
    assert status["last"]["total"] == 0  # no export rows read: only the event
    after = gathered.http.get(lookup, headers=key_of("gjj")).json()["records"][0]["elements"]
    assert after["person.registered_address"]["value"] == "广州市海珠区新港西路135号"
    assert after["person.registered_street"]["value"] == "新港街道"
    assert after["person.name"] == before["person.name"] | {
        "refreshed_at": after["person.name"]["refreshed_at"]
    }
    again = _sources(gathered)[code]
    assert again["events_applied"] == source["events_applied"] + 1
    assert again["event_cursor"] > source["event_cursor"]
    # Applied once: the next pass has nothing to do.
    assert gathered.gather()["last"]["events"].get(code, 0) == 0


def test_lookups_let_go_of_their_snapshot_when_they_stop(gathered: Site) -> None:
    # On SQLite lookups read one snapshot for a moment; once they stop it is let go, so the
    # WAL can be checkpointed to its end (a snapshot kept would hold it back for good).
    for i in range(5):
        resp = gathered.http.post(
            "/api/v1/libraries/person/query",
            json={"keys": [CITY.id_number_of(i)]},
            headers=key_of("mzj"),
        )
        assert resp.status_code == 200, resp.text
    path = gathered.ctx.db.engine.url.database
    assert path

    def checkpointed() -> bool:
        # A connection of its own (a short busy timeout must not stay on a pooled one).
        with contextlib.closing(sqlite3.connect(path, timeout=0.1)) as conn:
            busy: int = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return busy == 0

    wait_until(checkpointed, "no reader holding the WAL back", every=0.05)
