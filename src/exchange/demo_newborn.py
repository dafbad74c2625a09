"""``exchange demo --story newborn``: 新生儿出生"一件事", narrated.

A birth is registered once, at public security (市公安局, ``gaj``: 出生登记), and reaches
the departments that act on it by subscription, within seconds, without anyone asking:

* the health commission (市卫健委, ``wjw``: the child's health record and vaccinations),
  pushed to an endpoint it runs;
* the medical-security bureau (市医保局, ``ybj``: the newborn's medical insurance, 新生儿
  参保), pushed to an endpoint it runs;
* civil affairs (市民政局, ``mzj``: household-based benefits), which has no endpoint the
  exchange could reach and reads a pull feed with long-poll instead.

Then a bank (工商银行广州分行, ``icbc``) opening the child's account verifies the address
the father declared (核验): the exchange answers ``match`` or ``mismatch`` and never the
address, under the catalog's ``verifiable`` flag on 户籍地址, without a grant.

Against a running exchange with the mock departments (``exchange up``), through its public
API: each department applies for the household-registration items it needs with delivery
``subscription`` (unconditional items: granted at once), subscribes to births only, the
mock public-security bureau registers a birth (``POST /departments/_changes/birth``, the
operator's control of the living city), and the story times each arrival, shows what each
department received (only its granted items), the subscriptions' lag and the audit of the
deliveries. The story's subscriptions are deleted at the end, so it can be told again.

Its cast is :mod:`exchange.demo_newborn_cast`; how the departments receive the birth,
:mod:`exchange.demo_newborn_arrivals`.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import ExitStack
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from exchange.client import ExchangeClient, PushReceiver
from exchange.demo_narration import Narrator, mask_id
from exchange.demo_newborn_arrivals import (
    Inbox,
    auth_headers,
    raise_for_error,
    serving,
    wait_for,
)
from exchange.demo_newborn_cast import BANK, CONSUMERS, PROVIDER, TOPIC, NewbornReport
from exchange.glossary import Lang
from exchange.security import demo_key

__all__ = ["CONSUMERS", "NewbornReport", "run_newborn"]


def run_newborn(
    base_url: str,
    operator_key: str,
    *,
    console: Console | None = None,
    pause: float = 0.0,
    lang: Lang = "zh",
    timeout: float = 30.0,
    receiver_host: str = "127.0.0.1",
) -> NewbornReport:
    """Tell the story against the exchange at ``base_url``; see the module docstring."""
    out = Narrator(console or Console(), pause, lang)
    report = NewbornReport()
    keys = {c.code: demo_key(operator_key, c.code) for c in CONSUMERS}
    op_headers = {"Authorization": f"Bearer {operator_key}"}
    inbox = Inbox()
    with ExitStack() as stack:
        operator = stack.enter_context(ExchangeClient(base_url, operator_key))
        http = stack.enter_context(httpx.Client(base_url=base_url, timeout=40.0))
        out.chapter(
            "the case",
            '[bold]新生儿出生"一件事"[/] — a birth as one thing.\n'
            "Parents register their newborn once, at public security (市公安局, [cyan]gaj[/], "
            "the source of household registration: 一数一源). The departments that act on a "
            "birth subscribe to the registrations instead of asking the parents for papers: "
            + ", ".join(f"[cyan]{c.code}[/] {c.label}" for c in CONSUMERS)
            + ".",
        )
        today = operator.clock().today
        code = _topic_code(operator)
        out.say(f"  topic 户籍登记信息 {code} (provider gaj)")

        out.chapter(
            "each department applies for delivery by subscription",
            "Household-registration items are shared [green]unconditionally[/]: the grant is "
            "made at once, with delivery 订阅 (subscription), for the items each needs.",
        )
        table = Table("department", "items", "grant")
        for c in CONSUMERS:
            with ExchangeClient(base_url, keys[c.code]) as client:
                made = client.apply(
                    code,
                    list(c.items),
                    purpose=c.purpose,
                    legal_function=c.legal_function,
                    valid_until=today + dt.timedelta(days=365),
                    scope="business_collaboration",
                    delivery="subscription",
                )
            granted = sorted(d.field for d in made.decisions if d.outcome.value == "granted")
            report.granted[c.code] = granted
            table.add_row(c.code, ", ".join(granted), f"#{made.grant_id}")
        out.console.print(table)

        out.chapter(
            "they subscribe to births",
            "A subscription names the topic, the granted items to receive and a filter (here: "
            "kind [bold]birth[/] only). wjw and ybj run endpoints the exchange pushes to, "
            "signed with their provider credential; mzj has no reachable endpoint and reads "
            "a pull feed with long-poll.",
        )
        for c in CONSUMERS:
            body: dict[str, Any] = {
                "topic": code,
                "items": list(c.items),
                "filter": {"kinds": ["birth"]},
                "delivery": c.delivery,
            }
            if c.delivery == "push":
                credential = http.post(
                    f"/api/v1/departments/{c.code}/provider-credential", headers=op_headers
                )
                raise_for_error(credential)
                receiver = PushReceiver(
                    inbox.handler(c.code),
                    secret=credential.json()["credential"],
                    audience=c.code,
                )
                endpoint = stack.enter_context(serving(receiver, receiver_host))
                body["endpoint"] = endpoint
            made_sub = http.post(
                "/api/v1/subscriptions", json=body, headers=auth_headers(keys[c.code])
            )
            raise_for_error(made_sub)
            sub_id = int(made_sub.json()["id"])
            report.subscriptions[c.code] = sub_id
            stack.callback(
                http.delete, f"/api/v1/subscriptions/{sub_id}", headers=auth_headers(keys[c.code])
            )
            out.say(
                f"  {c.code}: subscription #{sub_id}, {c.delivery}"
                + (f" → {body['endpoint']}" if c.delivery == "push" else " (long-poll)")
            )

        out.chapter(
            "a birth is registered at public security",
            "The hospital issues the birth medical certificate (出生医学证明); the parents "
            "register the child at their police station (出生登记).",
        )
        born = http.post("/departments/_changes/birth", headers=op_headers)
        raise_for_error(born)
        started = time.monotonic()
        events = {e["topic"]: e for e in born.json()["events"]}
        registration = events[TOPIC]
        child = str(registration["key"])
        report.child = child
        rec = registration["record"]
        cert = events.get("birth-medical-certificates", {}).get("record") or {}
        out.say(
            f"  [bold]{rec['name']}[/] ({rec['sex']}), {mask_id(child)}, born {rec['birth_date']}"
            + (f" at {cert['birth_place']}" if cert.get("birth_place") else "")
            + (
                f"; mother {cert['mother_name']}, father {cert['father_name']}"
                if cert.get("mother_name")
                else ""
            )
        )
        out.say(f"  registered in household {rec['household_number']}, {rec['registered_address']}")

        out.chapter(
            "it reaches each department by subscription",
            "Nobody asks: the exchange pushes the change (or hands it to the long-poll), each "
            "department receiving only the items it was granted.",
        )
        wait_for(http, inbox, report, keys, child, started, timeout)
        table = Table("department", "delivery", "arrived after", "event id", "items received")
        for c in CONSUMERS:
            arrival = report.arrivals.get(c.code)
            if arrival is None:
                table.add_row(c.code, c.delivery, "[red]not within the timeout[/]", "", "")
                continue
            table.add_row(
                c.code,
                c.delivery,
                f"{arrival.seconds:.2f} s",
                str(arrival.event["id"]),
                ", ".join(sorted(arrival.event["record"] or {})),
            )
        out.console.print(table)

        for c in CONSUMERS:
            sub = http.get(
                f"/api/v1/subscriptions/{report.subscriptions[c.code]}",
                headers=auth_headers(keys[c.code]),
            )
            if sub.status_code == 200:
                report.lag_ms[c.code] = sub.json()["stats"]["last_lag_ms"]
        lags = [f"{c}: {ms} ms" for c, ms in report.lag_ms.items() if ms is not None]
        if lags:
            out.say("  lag from the source's change to delivery — " + ", ".join(lags))

        father = cert.get("father_id_number")
        if father:
            _bank_verifies(out, http, code, str(father), rec, report, operator_key)

        out.chapter(
            "the audit trail",
            "Every delivery is audited like an exchange (consumer, provider, topic, items, "
            "records, outcome) in the same hash chain.",
        )
        _show_deliveries(out, operator, report, code)
    return report


def _bank_verifies(
    out: Narrator,
    http: httpx.Client,
    code: str,
    father: str,
    child: dict[str, Any],
    report: NewbornReport,
    operator_key: str,
) -> None:
    out.chapter(
        "a bank verifies the declared address (核验)",
        "The father opens a savings account for the child at 工商银行 ([cyan]icbc[/]) and "
        "declares his registered address. The bank may not receive household data, but 户籍"
        "地址 is marked verifiable in the catalog: the exchange compares at the source and "
        "answers match or mismatch, never the address.",
    )
    declared = str(child["registered_address"])
    # A slip of the pen: the room number off by one digit.
    wrong = declared[:-2] + ("1" if declared[-2] != "1" else "2") + declared[-1]
    bank = auth_headers(demo_key(operator_key, BANK))
    table = Table("declared address", "answer")
    report.verified = {}
    for claim in (declared, wrong):
        resp = http.post(
            f"/api/v1/exchange/{code}/verify",
            json={"key": father, "claims": {"registered_address": claim}},
            headers=bank,
        )
        if resp.status_code in (404, 405) and resp.json()["error"]["code"] == "route_not_found":
            out.say("  [dim]this exchange offers no verification (核验) yet[/]")
            report.verified = None
            return
        raise_for_error(resp)
        outcome = str(resp.json()["outcomes"]["registered_address"])
        report.verified[claim] = outcome
        colour = "green" if outcome == "match" else "red"
        table.add_row(claim, f"[{colour}]{outcome}[/]")
    out.console.print(table)
    out.say("  the bank's answer holds outcomes only; the audit records items and outcomes")


def _topic_code(client: ExchangeClient) -> str:
    offset = 0
    while True:
        page = client.search_topics(provider=PROVIDER, offset=offset, limit=200)
        for topic in page.items:
            if topic.slug == TOPIC and topic.status.value != "retired":
                return topic.resource_code
        offset += len(page.items)
        if not page.items or offset >= page.total:
            raise LookupError(f"the catalog has no {PROVIDER} topic {TOPIC!r}")


def _show_deliveries(
    out: Narrator, operator: ExchangeClient, report: NewbornReport, code: str
) -> None:
    table = Table("seq", "kind", "consumer ← provider", "topic", "records", "outcome")
    found = []
    for c in CONSUMERS:
        latest = None
        after = 0
        # Oldest first: page to the consumer's newest delivery of the topic (bounded).
        for _ in range(100):
            page = operator.audit_entries(
                consumer=c.code, resource_code=code, after=after, limit=1000
            )
            for entry in page.entries:
                if entry.kind in ("push", "pull") and entry.records:
                    latest = entry
            if page.next_after is None:
                break
            after = page.next_after
        if latest is not None:
            found.append(latest)
    for entry in sorted(found, key=lambda e: e.seq):
        table.add_row(
            str(entry.seq),
            entry.kind,
            f"{entry.consumer} ← {entry.provider}",
            entry.resource_code or "",
            str(entry.records),
            entry.outcome,
        )
    report.audited = len(found)
    out.console.print(table)
    verified = operator.verify_audit()
    report.chain_ok = verified.ok
    mark = "[green]intact[/]" if verified.ok else f"[red]broken: {verified.message}[/]"
    out.say(f"  hash chain of {verified.entries} entries: {mark}")
