"""Data-quality noise: a documented share of records with a defect, the same everywhere."""

from __future__ import annotations

import httpx
import orjson
import pytest

from exchange.departments import noise
from exchange.departments.city import City

pytestmark = pytest.mark.anyio

HH = "/departments/gaj/topics/household-registration"
SI = "/departments/rsj/topics/social-insurance-enrolment"


def test_variant_always_differs() -> None:
    for name in ("张伟", "李娜", "欧阳", "广州市某某有限公司", "", "X"):
        assert noise.variant(name) != name
    assert noise.variant("张伟") == "张玮"
    assert noise.variant("广州市天河区福源有限公司") == "广州市天河区福源有限责任公司"


def test_defects_are_deterministic_and_near_the_rate() -> None:
    salt = noise.salt_of("rsj", "social-insurance-enrolment")
    keys = [f"4401051990010{i:05d}" for i in range(20_000)]
    picked = [k for k in keys if noise.defect_of(salt, k, 0.1) is not None]
    assert 0.08 * len(keys) < len(picked) < 0.12 * len(keys)
    assert picked == [k for k in keys if noise.defect_of(salt, k, 0.1) is not None]
    # A lower rate picks a subset; 0 picks nothing.
    fewer = {k for k in keys if noise.defect_of(salt, k, 0.02) is not None}
    assert fewer <= set(picked)
    assert all(noise.defect_of(salt, k, 0.0) is None for k in keys[:100])
    other = noise.salt_of("ybj", "medical-insurance-enrolment")
    assert picked != [k for k in keys if noise.defect_of(other, k, 0.1) is not None]


def test_a_death_in_error_only_on_the_household_register() -> None:
    record = {"id_number": "x", "name": "张伟", "status": "正常"}
    salt = noise.salt_of("gaj", "household-registration")
    keys = [f"k{i}" for i in range(2_000)]
    outcomes = {noise.apply("household_registration", record, k, salt, 1.0)["status"] for k in keys}
    assert outcomes == {"正常", "死亡注销"}
    for k in keys:
        out = noise.apply("social_insurance_enrolment", record, k, salt, 1.0)
        assert out["status"] == "正常"
        assert out["name"] == "张玮"
    assert record == {"id_number": "x", "name": "张伟", "status": "正常"}


async def test_noisy_records_are_the_same_in_lookups_and_exports(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    clean = orjson.loads(
        (await client.get(f"{SI}/export", params={"limit": 3000})).content.splitlines()[0]
    )
    resp = await client.put(
        "/departments/_faults/rsj/social-insurance-enrolment",
        json={"noise_rate": 0.5},
        headers=operator,
    )
    assert resp.status_code == 200, resp.text
    lines = (await client.get(f"{SI}/export", params={"limit": 3000})).content.splitlines()
    exported = {r["id_number"]: r for r in map(orjson.loads, lines)}
    truth = {p.id_number: p.name for p in city.iter_people(0, 3000) if p.id_number in exported}
    changed = [k for k, r in exported.items() if r["name"] != truth[k]]
    assert 0.3 * len(exported) < len(changed) < 0.7 * len(exported)
    answer = (await client.post(f"{SI}/query", json={"keys": changed[:50]})).json()
    assert [r["name"] for r in answer["records"]] == [exported[k]["name"] for k in changed[:50]]
    # Cleared, the source serves its true records again (no stale cache).
    resp = await client.delete(
        "/departments/_faults/rsj/social-insurance-enrolment", headers=operator
    )
    assert resp.status_code in (200, 204)
    again = orjson.loads(
        (await client.get(f"{SI}/export", params={"limit": 3000})).content.splitlines()[0]
    )
    assert again == clean
    answer = (await client.post(f"{SI}/query", json={"keys": changed[:5]})).json()
    assert [r["name"] for r in answer["records"]] == [truth[k] for k in changed[:5]]


async def test_noise_rate_is_validated(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    resp = await client.put("/departments/_faults/gaj", json={"noise_rate": 2}, headers=operator)
    assert resp.status_code == 422
