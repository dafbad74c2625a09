"""``exchange demo --story enterprise``: opening a business as "one thing" (企业开办"一件事").

Against a running exchange, through its public API only, for an enterprise of the synthetic
city:

1. the tax bureau (``swj``), setting up the enterprise's invoices, reads its assembled
   record from the legal-person library (法人基础信息库): every element with its source
   department (一数一源) and when it was gathered (the operator starts a gathering pass
   first if the library does not hold the enterprise yet);
2. the market regulator (``scjgj``) issues its business licence (营业执照) through the
   licence system, signed by the platform (:mod:`exchange.demo_steps`);
3. a bank opening the enterprise's account verifies the licence offline, with the
   platform's public key and status list only;
4. the customs (``gzhg``) checks the enterprise against the red and black lists (信用联合
   奖惩) before registering it as a consignee.

Telling the story again on the same exchange returns the licence issued the first time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from exchange.client import ExchangeClient
from exchange.demo_narration import Narrator
from exchange.demo_steps import issue_business_licence, verify_business_licence
from exchange.departments.city import City, Enterprise
from exchange.security import demo_key

__all__ = ["EnterpriseReport", "pick_enterprise", "run_enterprise_story"]

READER = "swj"
CUSTOMS = "gzhg"
GATHER_WAIT = 300.0


@dataclass
class EnterpriseReport:
    credit_code: str = ""
    name: str = ""
    #: element → source department, as the legal-person library answered
    sources: dict[str, str] = field(default_factory=dict)
    licence_number: str = ""
    licence_created: bool = False
    verification: str = ""
    #: names of the lists the enterprise is on (empty: neither)
    lists: list[str] = field(default_factory=list)


def pick_enterprise(city: City, seed: int = 11) -> Enterprise:
    """An enterprise in business (存续) with a legal representative, the same for a seed."""
    for index in city.sample_enterprise_indices(200, seed=seed):
        e = city.enterprise(index)
        if e.status.startswith("存续") and e.legal_rep_name and e.kind == "91":
            return e
    raise LookupError("the city has no enterprise in business with a legal representative")


def _library_record(
    http: httpx.Client, operator_key: str, reader_key: str, code: str, out: Narrator
) -> dict[str, Any] | None:
    """The enterprise's record from the legal-person library, gathering first if needed."""

    def ask() -> dict[str, Any]:
        resp = http.post(
            "/api/v1/libraries/enterprise/query",
            json={"keys": [code]},
            headers={"Authorization": f"Bearer {reader_key}"},
        )
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer

    answer = ask()
    if answer["records"]:
        return answer
    out.say("  the library does not hold it yet: the operator starts a gathering pass …")
    op = {"Authorization": f"Bearer {operator_key}"}
    started = http.post("/api/v1/libraries/gather", json={"library": "enterprise"}, headers=op)
    started.raise_for_status()
    deadline = time.monotonic() + GATHER_WAIT
    while time.monotonic() < deadline:
        status = http.get("/api/v1/libraries/gather", headers=op)
        status.raise_for_status()
        if not status.json()["running"]:
            break
        time.sleep(0.5)
    answer = ask()
    return answer if answer["records"] else None


def run_enterprise_story(
    base_url: str,
    operator_key: str,
    city: City,
    *,
    console: Console | None = None,
    pause: float = 0.0,
) -> EnterpriseReport:
    """Tell the story against the exchange at ``base_url``; see the module docstring."""
    out = Narrator(console or Console(), pause)
    firm = pick_enterprise(city)
    report = EnterpriseReport(credit_code=firm.credit_code, name=firm.name)
    out.chapter(
        "the case",
        f"[bold]企业开办“一件事”[/] — opening a business as one thing.\n[bold]{firm.name}[/] "
        f"({firm.credit_code}), legal representative {firm.legal_rep_name}, "
        f"{firm.entity_type}, {firm.address}. The departments it deals with read what the "
        "platform already holds instead of asking for paper.",
    )
    with httpx.Client(base_url=base_url, timeout=60) as http:
        out.chapter(
            "the legal-person library",
            "市税务局 ([cyan]swj[/]) sets up the enterprise's invoices and reads its record "
            "from the legal-person library (法人基础信息库): each element comes from the one "
            "department that is its source (一数一源).",
        )
        answer = _library_record(
            http, operator_key, demo_key(operator_key, READER), firm.credit_code, out
        )
        if answer is None:
            out.say("  [red]the library still does not hold the enterprise[/]")
        else:
            record = answer["records"][0]
            table = Table("element", "value", "source", "gathered")
            for name, element in sorted(record["elements"].items()):
                report.sources[name] = element["provider"]
                table.add_row(
                    name,
                    str(element["value"])[:40],
                    element["provider"],
                    str(element["refreshed_at"])[:19],
                )
            out.console.print(table)
            if answer["withheld"]:
                out.say(f"  [dim]withheld (no grant): {', '.join(answer['withheld'])}[/]")

    out.chapter(
        "the business licence",
        "市市场监管局 ([cyan]scjgj[/]) issues the business licence (营业执照) through the "
        "licence system: the platform signs it (Ed25519) into a verification code, what the "
        "licence's QR code carries.",
    )
    with ExchangeClient(base_url, demo_key(operator_key, "scjgj")) as regulator:
        issued = issue_business_licence(regulator, firm)
    lic = issued.licence
    report.licence_number = lic.number
    report.licence_created = issued.created
    out.say(
        f"  {lic.type_name} [bold]{lic.number}[/] "
        + ("issued" if issued.created else "(issued by an earlier telling of the story)")
        + f" on {lic.issued_on}, valid until {lic.valid_until or '长期'}"
    )
    out.say(f"  verification code [dim]{lic.code[:48]}…[/] ({len(lic.code)} characters)")

    out.chapter(
        "verified offline",
        "The bank opening the account checks the licence with nothing but the platform's "
        "public key and its signed status list: `exchange licence verify NUMBER CODE` does "
        "the same from a terminal.",
    )
    result = verify_business_licence(base_url, lic)
    report.verification = result.reason
    colour = "green" if result.ok else "red"
    out.say(f"  [{colour}]{result.reason.upper()}[/]: {result.message}")

    out.chapter(
        "the customs checks the lists",
        "广州海关 ([cyan]gzhg[/]) registers consignees only after a credit check: "
        "the red and black lists of credit double publicity (信用“双公示”).",
    )
    with ExchangeClient(base_url, demo_key(operator_key, CUSTOMS)) as customs:
        lists = customs.credit_list(firm.credit_code)
    report.lists = [str(m.name) for m in lists.lists]
    if report.lists:
        out.say(f"  on the lists: [bold]{', '.join(report.lists)}[/]")
    else:
        out.say("  [green]on neither the red nor the black list[/]: registration goes ahead")
    return report
