"""Quality: disagreements made by the mock sources' noise are found, scoped, resolved."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from tests.e2e.harness import OPERATOR, key_of
from tests.libraries.conftest import Site

from exchange.departments import noise
from exchange.departments.city import City

CITY = City(seed=2020, population=3_000, enterprises=600)


def _conflicts(site: Site, key: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = site.http.get(
        "/api/v1/libraries/person/conflicts", params={"limit": 500, **params}, headers=key
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_noise_makes_conflicts_that_sources_read_and_resolve(
    site_factory: Callable[..., AbstractContextManager[Site]],
) -> None:
    with site_factory() as site:
        site.gather()
        site.approve_pending()
        site.wait_granted()
        site.faults("rsj", "social-insurance-enrolment", noise_rate=0.2)
        site.faults("gaj", "household-registration", noise_rate=0.05)
        status = site.gather(full=True)
        assert status["last"]["conflicts"]["person"] > 0

        every = _conflicts(site, OPERATOR)
        assert every["total"] == len(every["items"]) > 0
        kinds = {c["kind"] for c in every["items"]}
        assert kinds == {"mismatch", "deceased_insured"}
        # Every conflict traces to a documented defect of the noisy sources: the name
        # rsj (or gaj) served is the noise variant of the city's, or gaj recorded a death
        # of a person the city has alive.
        si_salt = noise.salt_of("rsj", "social-insurance-enrolment")
        hh_salt = noise.salt_of("gaj", "household-registration")
        for c in every["items"]:
            person = CITY.person_by_id_number(c["subject"])
            assert person is not None
            if c["kind"] == "deceased_insured":
                assert c["provider"] == "gaj"
                assert c["value"] == "死亡注销"
                assert person.alive
                assert noise.defect_of(hh_salt, c["subject"], 0.05) == 1
                continue
            assert c["element"] == "person.name"
            # A dead person's record cannot get a death in error: it gets a name variant.
            defect = noise.defect_of(hh_salt, c["subject"], 0.05)
            wrong_at_source = defect == 0 or (defect == 1 and not person.alive)
            wrong_at_other = (
                c["other_provider"] == "rsj"
                and noise.defect_of(si_salt, c["subject"], 0.2) is not None
            )
            assert wrong_at_source or wrong_at_other, c
            assert person.name in (c["value"], c["other_value"])

        # A department sees the conflicts it is one of the two sources of.
        rsj = _conflicts(site, key_of("rsj"))
        assert rsj["total"] > 0
        assert all("rsj" in (c["provider"], c["other_provider"]) for c in rsj["items"])
        assert rsj["total"] < every["total"]
        unrelated = _conflicts(site, key_of("swj"))
        assert unrelated["total"] == 0

        target = next(
            c for c in rsj["items"] if c["kind"] == "mismatch" and c["other_provider"] == "rsj"
        )
        url = f"/api/v1/libraries/conflicts/{target['id']}/resolve"
        body = {"resolution": "corrected", "note": "参保登记姓名已更正"}
        assert site.http.post(url, json=body, headers=key_of("swj")).status_code == 404
        assert (
            site.http.post(url, json={"resolution": "maybe"}, headers=key_of("rsj")).status_code
            == 422
        )
        resp = site.http.post(url, json=body, headers=key_of("rsj"))
        assert resp.status_code == 200, resp.text
        done = resp.json()
        assert done["status"] == "resolved"
        assert done["resolved_by"] == "rsj"
        again = site.http.post(url, json=body, headers=OPERATOR)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "conflict_closed"
        assert (
            site.http.post(
                "/api/v1/libraries/conflicts/999999/resolve", json=body, headers=OPERATOR
            ).status_code
            == 404
        )
        resolved = _conflicts(site, OPERATOR, status="resolved")
        assert [c["id"] for c in resolved["items"]] == [target["id"]]

        libs = site.http.get("/api/v1/libraries", headers=OPERATOR).json()
        counts = next(lib for lib in libs if lib["library"] == "person")["conflicts"]
        assert counts["open"] == every["total"] - 1
        assert counts["resolved"] == 1
        assert set(counts["by_kind"]) == kinds

        # The sources corrected (noise off): the next full pass clears what is gone.
        site.faults("rsj", "social-insurance-enrolment", noise_rate=0.0)
        site.faults("gaj", "household-registration", noise_rate=0.0)
        site.gather(full=True)
        left = _conflicts(site, OPERATOR, status="open")
        assert left["total"] == 0
        cleared = _conflicts(site, OPERATOR, status="resolved")
        assert cleared["total"] == every["total"]
        assert {c["resolution"] for c in cleared["items"]} == {"corrected", "cleared"}
