"""Reaching an application, a dispute or a grant: the one fetch–404–party check
(:func:`exchange.authz.access.fetch_as_party`) answers each with its own words."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.authz.conftest import application, apply
from tests.conftest import OPERATOR

Depts = dict[str, dict[str, str]]
Topics = dict[str, str]


@pytest.fixture
def rows(client: TestClient, depts: Depts, topics: Topics) -> dict[str, int]:
    """rsj applies to gaj: one item granted at once, one refused and then disputed."""
    app = apply(client, depts["rsj"], application(topics["person"], ["name", "criminal_record"]))
    assert app["grant_id"] is not None
    resp = client.post(
        f"/api/v1/applications/{app['id']}/dispute",
        json={"reason": "办理社保待遇需要核验"},
        headers=depts["rsj"],
    )
    assert resp.status_code == 201, resp.text
    return {"applications": app["id"], "disputes": resp.json()["id"], "grants": app["grant_id"]}


@pytest.mark.parametrize(
    ("kind", "missing", "not_yours"),
    [
        ("applications", "application_not_found", "not_your_application"),
        ("disputes", "dispute_not_found", "not_your_dispute"),
        ("grants", "grant_not_found", "not_your_grant"),
    ],
)
def test_parties_see_a_row_strangers_are_refused_and_a_missing_one_is_named(
    client: TestClient,
    depts: Depts,
    rows: dict[str, int],
    kind: str,
    missing: str,
    not_yours: str,
) -> None:
    url = f"/api/v1/{kind}/{rows[kind]}"
    for party in (depts["rsj"], depts["gaj"], OPERATOR):
        resp = client.get(url, headers=party)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == rows[kind]
    resp = client.get(url, headers=depts["swj"])
    assert resp.status_code == 403
    error = resp.json()["error"]
    assert error["code"] == not_yours
    assert str(rows[kind]) in error["message"]
    assert "'swj'" in error["message"]
    resp = client.get(f"/api/v1/{kind}/{rows[kind] + 1000}", headers=OPERATOR)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == missing
    assert resp.json()["error"]["message"] == f"no {kind[:-1]} {rows[kind] + 1000}"


@pytest.mark.parametrize("kind", ["applications", "grants"])
def test_a_list_pages_in_id_order_and_counts_only_the_caller_s_rows(
    client: TestClient, depts: Depts, topics: Topics, kind: str
) -> None:
    """Three of rsj's rows and one of swj's: rsj pages through its three, two at a time."""
    for topic in ("person", "marriage", "secret"):
        apply(
            client,
            depts["rsj"],
            application(topics[topic], ["id_number"] if topic != "secret" else ["case_no"]),
        )
    apply(client, depts["swj"], application(topics["person"], ["name"]))
    if kind == "grants":
        # Grants open at once only for unconditional items: approve the marriage one.
        pending = client.get(
            "/api/v1/applications", params={"role": "provider"}, headers=depts["mzj"]
        ).json()["items"]
        for app in pending:
            resp = client.post(
                f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["mzj"]
            )
            assert resp.status_code == 200, resp.text
    everything = client.get(f"/api/v1/{kind}", headers=OPERATOR).json()
    mine = [r["id"] for r in everything["items"] if r["consumer"] == "rsj"]
    assert len(mine) == (3 if kind == "applications" else 2)

    pages = [
        client.get(f"/api/v1/{kind}", params={"offset": o, "limit": 2}, headers=depts["rsj"])
        for o in (0, 2)
    ]
    assert all(p.status_code == 200 for p in pages)
    bodies = [p.json() for p in pages]
    assert {b["total"] for b in bodies} == {len(mine)}
    ids = [r["id"] for b in bodies for r in b["items"]]
    assert ids == sorted(mine)
    assert len(bodies[0]["items"]) == 2
    assert everything["total"] == len(everything["items"]) == len(mine) + 1
