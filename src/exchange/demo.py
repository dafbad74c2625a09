"""``exchange demo``: the household economic-status verification story, narrated.

居民家庭经济状况核对: civil affairs (市民政局, ``mzj``) must check a social-assistance
applicant's household economy with the applicant's signed authorisation. Against a running
exchange, and only through its public API (the SDK), the demo

1. finds the source departments' topics in the catalog;
2. applies for them as civil affairs: unconditional items are granted at once, conditional
   ones wait for the provider's review (one provider narrows the request), and the tax
   bureau's not-shared topic is refused at once;
3. disputes the refusal; the provider states its legal basis in the negotiation thread and
   the operator (市政务服务数据管理局) decides;
4. runs one check for a sampled applicant, fanning out through the broker to every source
   department at once;
5. shows the audit trail of that check and verifies the hash chain.

Every run files new applications (a newer grant replaces the older one for the same
topic), so the story can be told again on the same exchange. Its cast (the requests, the
applicant, the report) is :mod:`exchange.demo_household_cast`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from exchange.client import (
    AsyncExchangeClient,
    ExchangeAPIError,
    ExchangeClient,
    PermissionDenied,
)
from exchange.demo_household_cast import (
    CONSUMER,
    DISPUTE_GRANTS,
    LEGAL_FUNCTION,
    PURPOSE,
    REQUESTS,
    Applicant,
    DemoReport,
    Request,
    pick_applicant,
)
from exchange.demo_narration import Narrator, mask_id
from exchange.departments.city import City
from exchange.glossary import Lang, word
from exchange.security import demo_key

__all__ = [
    "DISPUTE_GRANTS",
    "REQUESTS",
    "Applicant",
    "DemoReport",
    "Request",
    "pick_applicant",
    "run_demo",
]


def run_demo(
    base_url: str,
    operator_key: str,
    city: City,
    *,
    console: Console | None = None,
    pause: float = 0.0,
    lang: Lang = "zh",
) -> DemoReport:
    """Tell the story against the exchange at ``base_url``; see the module docstring.
    Codes the exchange answers with are worded in ``lang`` from the glossary."""
    out = Narrator(console or Console(), pause, lang)
    report = DemoReport()
    keys = {code: demo_key(operator_key, code) for code in {CONSUMER, *_providers()}}
    with (
        ExchangeClient(base_url, keys[CONSUMER]) as mzj,
        ExchangeClient(base_url, operator_key) as operator,
    ):
        out.chapter(
            "the case",
            "[bold]居民家庭经济状况核对[/] — household economic-status verification.\n"
            "市民政局 (civil affairs, [cyan]mzj[/]) must check a social-assistance applicant's "
            "vehicles, real estate, employment and social insurance, provident fund, tax and "
            "business ownership, with the applicant's signed authorisation. Each fact lives "
            "with its source department (一数一源); the exchange brokers every read.",
        )
        today = operator.clock().today
        codes = _find_topics(out, mzj)
        valid_until = today + dt.timedelta(days=365)

        out.chapter(
            "civil affairs applies",
            "By law every topic and item has a sharing type: [green]unconditional[/] items are "
            "granted at once, [yellow]conditional[/] ones wait for the provider's review "
            "(10 working days at most), [red]not shared[/] ones are refused citing a legal "
            "basis.",
        )
        apps: dict[str, int] = {}
        table = Table("department", "topic", "items asked", "answer", "grant")
        for req in REQUESTS:
            made = mzj.apply(
                codes[req.slug],
                req.items,
                purpose=PURPOSE,
                legal_function=LEGAL_FUNCTION,
                valid_until=valid_until,
                scope="data_verification",
            )
            apps[req.slug] = made.id
            report.applications[req.slug] = made.status.value
            table.add_row(
                req.provider,
                req.label,
                str(len(req.items)),
                out.status(made.status.value),
                f"#{made.grant_id}" if made.grant_id else "—",
            )
            if made.grant_id is not None:
                report.granted[req.slug] = sorted(
                    d.field for d in made.decisions if d.outcome.value == "granted"
                )
        out.console.print(table)

        pending = [r for r in REQUESTS if report.applications[r.slug] == "pending_review"]
        out.chapter(
            "providers review",
            f"{len(pending)} applications wait for review. Each provider reads the purpose "
            "and legal function; 公安局 approves vehicles without the brand (not needed to "
            "value a car), the others approve as asked.",
        )
        for req in pending:
            with ExchangeClient(base_url, keys[req.provider]) as provider:
                if req.narrow_to is not None:
                    done = provider.approve(
                        apps[req.slug],
                        items=list(req.narrow_to),
                        reason="核对车辆价值无需品牌信息",
                    )
                else:
                    done = provider.approve(apps[req.slug])
            report.applications[req.slug] = done.status.value
            granted = sorted(d.field for d in done.decisions if d.outcome.value == "granted")
            report.granted[req.slug] = granted
            left_out = sorted(set(req.items) - set(granted))
            out.say(
                f"  {req.provider:6} {req.label:28} → {out.status(done.status.value)}"
                + (f"  [dim](left out: {', '.join(left_out)})[/]" if left_out else "")
            )

        refused = [r for r in REQUESTS if report.applications[r.slug] == "returned"]
        for req in refused:
            _dispute(out, report, req, apps[req.slug], mzj, operator, base_url, keys)

        applicant = pick_applicant(city)
        report.applicant = applicant
        out.chapter(
            "one check fans out",
            f"Applicant [bold]{applicant.name}[/] ({mask_id(applicant.id_number)}), legal "
            f"representative of {len(applicant.credit_codes)} business(es), owner of "
            f"{len(applicant.plates)} vehicle(s). One check sends every lookup through the "
            "broker at once; each answer carries only the granted items, and each call is "
            "audited before it is answered.",
        )
        case = f"低保核对 {today:%Y%m%d}-{applicant.id_number[-4:]}"
        results = asyncio.run(_fan_out(base_url, keys[CONSUMER], codes, applicant, report, case))
        _show_results(out, results)

        out.chapter(
            "the audit trail",
            "Every exchange is a link in a hash chain: the operator sees who read what, when, "
            "for which case, and can prove nothing was edited, removed or reordered.",
        )
        _show_audit(out, operator, report)
    return report


def _providers() -> set[str]:
    return {r.provider for r in REQUESTS}


def _find_topics(out: Narrator, client: ExchangeClient) -> dict[str, str]:
    codes: dict[str, str] = {}
    table = Table("provider", "resource code", "topic", "type")
    for provider in sorted(_providers()):
        wanted = {r.slug for r in REQUESTS if r.provider == provider}
        # Page through the provider's topics: in the larger catalogs (platform-2020) a
        # source department publishes hundreds, and the demo's are not on the first page.
        offset = 0
        while wanted - codes.keys():
            page = client.search_topics(provider=provider, offset=offset, limit=200)
            for topic in page.items:
                if topic.slug in wanted and topic.status.value != "retired":
                    codes[topic.slug] = topic.resource_code
                    table.add_row(provider, topic.resource_code, topic.name, topic.resource_type)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
    missing = [r.slug for r in REQUESTS if r.slug not in codes]
    if missing:
        raise LookupError(f"the catalog lacks the demo's topics: {', '.join(missing)}")
    out.chapter(
        "the catalog",
        "Civil affairs searches the shared-resource catalog (共享资源目录) for the source "
        "departments' topics:",
    )
    out.console.print(table)
    return codes


def _dispute(
    out: Narrator,
    report: DemoReport,
    req: Request,
    app_id: int,
    consumer: ExchangeClient,
    operator: ExchangeClient,
    base_url: str,
    keys: dict[str, str],
) -> None:
    out.chapter(
        "a refusal is disputed",
        f"{req.provider} refused {req.label}: its items are [red]not shared[/] (tax secrecy, "
        "《税收征收管理法》第八条). Civil affairs needs the totals to assess a self-employed "
        "applicant's income, so it disputes; the two sides negotiate, then the operator "
        "coordinates and decides (争议协调).",
    )
    dispute = consumer.dispute(app_id, "核定经营性收入须知纳税总额与欠税情况,申请人已书面授权查询")
    with ExchangeClient(base_url, keys[req.provider]) as provider:
        provider.post_message(
            dispute.id, "纳税明细属涉税保密信息;如确需核对,可限于年度纳税总额及欠税金额"
        )
    consumer.post_message(dispute.id, "同意仅取年度纳税总额与欠税金额")
    decided = operator.decide(
        dispute.id,
        "partial",
        "依职能共享:低保核对确需经营收入佐证,限年度纳税总额与欠税金额,不含分税种明细",
        items=[i for i in DISPUTE_GRANTS if i in req.items],
    )
    report.dispute_decision = decided.decision.value if decided.decision else None
    application = consumer.get_application(app_id)
    report.applications[req.slug] = application.status.value
    report.granted[req.slug] = sorted(
        d.field for d in application.decisions if d.outcome.value == "granted"
    )
    for message in decided.messages:
        out.say(f"  [dim]{message.author}:[/] {message.body}")
    out.say(
        f"  operator decides [bold]{word('decision', report.dispute_decision, out.lang)}[/]: "
        f"{', '.join(report.granted[req.slug])} (grant #{application.grant_id})"
    )


async def _fan_out(
    base_url: str,
    key: str,
    codes: dict[str, str],
    applicant: Applicant,
    report: DemoReport,
    case: str,
) -> list[tuple[Request, list[dict[str, Any]], str]]:
    lookups = {
        "id_number": [applicant.id_number],
        "plate_number": list(applicant.plates),
        "credit_code": list(applicant.credit_codes),
    }
    async with AsyncExchangeClient(base_url, key) as client:

        async def one(req: Request) -> tuple[Request, list[dict[str, Any]], str]:
            # A grant made a moment ago reaches the broker's cache within its poll
            # interval: a denial right after approval is retried briefly.
            for attempt in range(40):
                try:
                    answer = await client.query(codes[req.slug], lookups[req.key], case=case)
                    return req, answer.records, answer.request_id
                except PermissionDenied:
                    if attempt == 39:
                        raise
                    await asyncio.sleep(0.05)
            raise AssertionError("unreachable")

        wanted = [r for r in REQUESTS if report.granted.get(r.slug)]
        results = await asyncio.gather(*(one(r) for r in wanted))
    for req, records, rid in results:
        report.found[req.slug] = len(records)
        report.request_ids.append(rid)
    return list(results)


def _show_results(
    out: Narrator, results: Sequence[tuple[Request, list[dict[str, Any]], str]]
) -> None:
    table = Table("department", "topic", "records", "what the check learns")
    for req, records, _ in results:
        table.add_row(req.provider, req.label, str(len(records)), _summary(req, records))
    out.console.print(table)


def _summary(req: Request, records: list[dict[str, Any]]) -> str:
    if not records:
        return "nothing on record"
    first = records[0]
    shown = [f"{k}={first[k]}" for k in req.items if k in first and k not in {"id_number", "name"}]
    text = ", ".join(shown[:3])
    return text + (f" (+{len(records) - 1} more)" if len(records) > 1 else "")


def _show_audit(out: Narrator, operator: ExchangeClient, report: DemoReport) -> None:
    table = Table("seq", "time", "consumer → provider", "topic", "records", "outcome", "hash")
    entries = []
    for rid in report.request_ids:
        entries.extend(operator.audit_entries(request_id=rid).entries)
    for entry in sorted(entries, key=lambda e: e.seq):
        table.add_row(
            str(entry.seq),
            entry.at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M:%S"),
            f"{entry.consumer} → {entry.provider}",
            entry.resource_code or "",
            str(entry.records),
            word("error", entry.outcome, out.lang),
            entry.hash[:10] + "…",
        )
    report.audited = len(entries)
    out.console.print(table)
    if entries:
        out.say(f"  case recorded with every entry: [bold]{entries[0].case}[/]")
    try:
        verified = operator.verify_audit()
    except ExchangeAPIError as exc:
        out.say(f"  [red]could not verify the chain: {exc.code}[/]")
        return
    report.chain_ok = verified.ok
    mark = "[green]intact[/]" if verified.ok else f"[red]broken: {verified.message}[/]"
    out.say(f"  hash chain of {verified.entries} entries: {mark}")
