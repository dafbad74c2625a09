"""Schemathesis over every operation of the OpenAPI schema: no 5xx, answers as documented.

One seeded exchange per backend (SQLite, PostgreSQL), served over real HTTP on loopback so
the broker's pure-ASGI fast path answers its own endpoints; each operation is fuzzed with
the operator key and with a department key. Examples are bounded so the whole module runs
in a couple of minutes on two cores.

``EXCHANGE_FUZZ_REPORT=path`` appends per-run counts (JSON lines) for bench/results.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.pytest.lazy import get_all_tests
from tests.conftest import fresh_database
from tests.e2e.harness import OPERATOR_KEY, free_port, seed_exchange, serve, settings_for

from exchange.app import build_context, create_app
from exchange.security import demo_key

MAX_EXAMPLES = int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "5"))
# Methods the coverage phase also sends to every path (405 with Allow expected).
UNEXPECTED_METHODS = ["PUT", "DELETE"]
# EXCHANGE_FUZZ_CHECKS=not_a_server_error counts 5xx alone (other failures would stop an
# operation's examples first): how issue 10 counted the 5xx it had to remove.
CHECKS = os.environ.get(
    "EXCHANGE_FUZZ_CHECKS",
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,unsupported_method,allow_header_conformance",
).split(",")
# A department that consumes and provides (民政局), so both sides of its routes are reached.
DEPARTMENT = "mzj"


@dataclass
class Served:
    backend: str
    url: str
    openapi: dict[str, Any]
    report: list[dict[str, Any]] = field(default_factory=list)

    def openapi_operations(self) -> list[str]:
        return [
            f"{method.upper()} {path}"
            for path, item in self.openapi["paths"].items()
            for method in item
            if method in {"get", "post", "put", "patch", "delete"}
        ]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with fresh_database(request.param, tmp) as url:
        settings = settings_for(url).model_copy(update={"mock_departments": True})
        port = free_port()
        ctx = build_context(settings)
        app = create_app(settings, ctx=ctx)
        seed_exchange(ctx, f"http://127.0.0.1:{port}/departments")
        with serve(app, port) as base:
            found = Served(request.param, base, app.openapi())
            yield found
        ctx.db.dispose()
        _report(found)


def _report(found: Served) -> None:
    path = os.environ.get("EXCHANGE_FUZZ_REPORT")
    if not path:
        return
    with Path(path).open("a") as out:
        for line in found.report:
            out.write(json.dumps(line) + "\n")


#: the longest ``wait`` the long-poll feeds take (catalog changes, a subscription's events)
MAX_WAIT = 30.0


def _asked_wait(case: Any) -> float:
    """The seconds of long-poll ``case`` asks for, when it is a wait the API takes: an
    answer may come that much later and still be on time. A case asking the longest wait
    past every change used to time out at exactly the client's 30 s (the server answers
    after the 30 s it was asked to wait)."""
    try:
        asked = float((case.query or {}).get("wait", 0))
    except (TypeError, ValueError):
        return 0.0
    return asked if 0 <= asked <= MAX_WAIT else 0.0


def _config(served: Served, key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "base-url": served.url,
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"max-examples": MAX_EXAMPLES},
            # Stateful sequences would multiply the time; links are not declared anyway.
            "phases": {
                "stateful": {"enabled": False},
                "coverage": {
                    "unexpected-methods": UNEXPECTED_METHODS,
                    "generate-duplicate-query-parameters": False,
                },
            },
            "checks": {"enabled": False} | {name: {"enabled": True} for name in CHECKS},
        }
    )


@pytest.mark.e2e
@pytest.mark.parametrize("who", ["operator", "department"])
def test_every_operation_no_server_error_and_answers_as_documented(
    served: Served, who: str
) -> None:
    key = OPERATOR_KEY if who == "operator" else demo_key(OPERATOR_KEY, DEPARTMENT)
    schema = schemathesis.openapi.from_dict(served.openapi, config=_config(served, key))
    statuses: Counter[str] = Counter()
    session = requests.Session()  # keep-alive: one connection, not one per example

    def check(case: Any) -> None:
        response = case.call(session=session, timeout=30 + _asked_wait(case))
        statuses[f"{response.status_code // 100}xx"] += 1
        case.validate_response(response)

    # get_all_tests builds the Hypothesis test of each operation with every phase
    # (examples, coverage, fuzzing) as `@schema.parametrize()` does; run here in a loop so
    # one failing operation does not hide the others (and pytest 9 lacks the private
    # node attribute schemathesis' lazy fixtures rename).
    failures: list[str] = []
    failed: list[str] = []
    operations = 0
    for result in get_all_tests(schema=schema, test_func=check, settings=None, given_kwargs={}):
        operation, test = result.ok()
        operations += 1
        try:
            test()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
            failures.append(f"{operation.label}: {exc}")
            failed.append(operation.label)
    served.report.append(
        {
            "backend": served.backend,
            "key": who,
            "operations": operations,
            **statuses,
            "failures": len(failures),
            "failed": failed,
            "examples": sum(statuses.values()),
        }
    )
    session.close()
    assert operations == len(served.openapi_operations())
    assert not failures, "\n\n".join(failures)
