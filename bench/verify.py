"""Benchmark of verification without disclosure (核验) through the broker, against a lookup
through the broker in the same run (the baseline).

One invocation, all on loopback: the mock departments and the exchange (SQLite, one
worker) from ``bench/_stack.py``, driven by wrk (1 thread, 64 connections). Workloads,
each request one key of 2,000 existing residents of household registration (户籍):

* **lookup** (baseline): mzj, holding a grant for 4 items, ``POST …/query`` one key;
* **verify**: a bank (icbc), holding no grant, ``POST …/verify`` one key with two claims on
  items the catalog marks verifiable (姓名 and 户籍地址, the address typed with full-width
  digits half the time and wrong a quarter of the time);
* **verify batch**: the same bank, 100 checks of two claims per call (checks/s is the
  figure to read).

Each round runs the workloads back to back, rotating which goes first; the figures are
medians of the rounds. Results are printed and written to ``bench/results/verify.md``.

    .venv/bin/python bench/verify.py [--rounds 5] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import httpx
from _common import work_dir
from _stack import ENTERPRISES, KEY, POPULATION, ROOT, lua, single_workload, stack

from broker import wrk
from exchange.departments.city import City
from exchange.security import demo_key

RESULTS = ROOT / "bench" / "results" / "verify.md"
BANK = "icbc"
BATCH = 100
KINDS = ("lookup", "verify", "batch")


def _claims(city: City, index: int, n: int) -> dict[str, object]:
    """The claims of the ``n``-th request about resident ``index``: right, right typed
    full-width, or a neighbour's address (wrong)."""
    person = city.person(index)
    address = person.address
    if n % 4 == 1:
        address = "".join(
            chr(ord(c) + 0xFEE0) if c.isascii() and c.isdigit() else c for c in address
        )
    elif n % 4 == 3:
        # A neighbour's address (not a spouse's: one household shares its address).
        other = index + 1
        while city.person(other).address == person.address:
            other += 1
        address = city.person(other).address
    return {"key": person.id_number, "claims": {"name": person.name, "registered_address": address}}


def verify_lua(path: str, auth: str, bodies: list[str]) -> str:
    """A wrk script posting ``bodies`` in turn (seeded random order)."""
    # Raw UTF-8 inside Lua strings: Lua 5.1 (LuaJIT, wrk's) has no \u escapes.
    pool = ",".join(json.dumps(b, ensure_ascii=False) for b in bodies)
    return (
        f"local bodies = {{{pool}}}\nmath.randomseed(2020)\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = {json.dumps(auth)}\n'
        "request = function()\n"
        f"  return wrk.format(nil, {json.dumps(path)}, nil, bodies[math.random(#bodies)])\n"
        "end\n"
    )


def script_loads(url: str, script: Path) -> None:
    """Refuse to measure with a script wrk cannot load: wrk then says so on stderr and
    sends its default request (``GET /``, answered 200 by the portal) instead."""
    done = subprocess.run(
        ["wrk", "-t1", "-c1", "-d1s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or done.stderr.strip():
        raise SystemExit(f"wrk cannot run {script}: {done.stderr.strip()[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    work = work_dir("bench-verify-")
    load_before = os.getloadavg()
    city = City(2020, POPULATION, ENTERPRISES)
    with stack(work) as st:
        workload = single_workload(st)  # mzj's grant and the lookup script's keys
        target = workload.targets[0]
        verify_path = f"/api/v1/exchange/{target.code}/verify"
        indices = list(range(0, 20_000, 10))
        singles = [
            json.dumps(_claims(city, i, n), ensure_ascii=False) for n, i in enumerate(indices)
        ]
        batches = [
            json.dumps(
                {"checks": [_claims(city, i, n) for n, i in enumerate(indices[s : s + BATCH], s)]},
                ensure_ascii=False,
            )
            for s in range(0, len(indices), BATCH)
        ]
        bank = f"Bearer {demo_key(KEY, BANK)}"
        scripts = {k: work / f"{k}.lua" for k in KINDS}
        scripts["lookup"].write_text(lua(workload, direct=False))
        scripts["verify"].write_text(verify_lua(verify_path, bank, singles))
        scripts["batch"].write_text(verify_lua(verify_path, bank, batches))
        # The answers are right before anything is timed.
        with httpx.Client(base_url=st.ex_url, timeout=30) as http:
            auth = {"Authorization": bank}
            one = http.post(verify_path, content=singles[3].encode(), headers=auth)
            assert one.status_code == 200, one.text
            assert one.json()["outcomes"] == {"name": "match", "registered_address": "mismatch"}
            many = http.post(verify_path, content=batches[0].encode(), headers=auth).json()
            assert many["summary"] == {
                "match": 2 * BATCH - BATCH // 4,
                "mismatch": BATCH // 4,
                "unknown": 0,
            }, many["summary"]
        servers = {"department": [st.department.pid], "exchange": [st.exchange.pid]}

        def run(kind: str, seconds: int) -> dict[str, float]:
            return wrk(st.ex_url, scripts[kind], seconds, 64, servers)

        for kind in KINDS:
            script_loads(st.ex_url, scripts[kind])
            run(kind, 2)  # warm
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(args.rounds):
            order = KINDS[r % 3 :] + KINDS[: r % 3]
            row = {kind: run(kind, args.seconds) for kind in order}
            rounds.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in row.items()))
        load_after = os.getloadavg()
    text = report(args, rounds, load_before, load_after)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


NOTES = """## Reading these figures

The machine has 2 cores shared by wrk, the department, the exchange and other engineers'
work (load average above): under load the lookup baseline itself falls far below what
the broker does on a quiet machine, and rounds move by up to a factor of two. The figure
that depends least on the load is the exchange's CPU per call: a verification costs
{ratio:.2f}× a lookup's. {verdict}

What a verification costs beyond a lookup: parsing the claims for their items' types, the
comparison (Unicode NFKC, case folding, whitespace rules: ~1 µs per value once
`str.translate` with a dict table, ~14 µs for a short address, was skipped for text that
needs none), the permission step (catalog flag, or the grant's purpose) and an audit entry
carrying the outcome counts. In a batch of {batch} checks each check cost the exchange
{per_check:.0f} µs of CPU, {share:.0%} of a single verification: send batches where the
checks are at hand.
"""


def report(
    args: argparse.Namespace,
    rounds: list[dict[str, dict[str, float]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    def med(kind: str, field: str) -> float:
        return statistics.median(r[kind][field] for r in rounds)

    verify_rps = med("verify", "rps")
    checks = med("batch", "rps") * BATCH
    met = "**met**" if verify_rps >= 3000 else "**not met**"
    lines = [
        "# Verification (核验) benchmark",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
        "`bench/verify.py`: wrk (1 thread, 64 connections), the mock departments and the "
        "exchange (**SQLite**, one worker), each in its own process on the same machine; "
        f"medians of {args.rounds} rounds of {args.seconds} s, the three workloads back to "
        "back in each round, warm. Load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after: the machine is shared and busy "
        "(other people's work), so absolute figures move between runs; the ratio to the "
        "lookup baseline within the run is the figure to read.",
        "",
        "Workloads, one key of 2,000 residents of household registration per request (or "
        f"per check): **lookup** (baseline), mzj's `POST …/query` under its grant of 4 "
        "items; **verify**, a bank (icbc) without any grant, `POST …/verify` with two "
        "claims on items the catalog marks verifiable (姓名, 户籍地址; the address typed "
        "full-width a quarter of the time, wrong a quarter); **batch**, the same with "
        f"{BATCH} checks per call. Department latency and error faults off. Each call: key "
        "auth, verification permission (catalog flag, grant), signed provider call "
        "(shared with concurrent calls of the topic), comparison, audit entry with the "
        "outcome counts journaled before the answer.",
        "",
        "| measure | lookup (baseline) | verify | verify batch | target | |",
        "|---|---|---|---|---|---|",
        "| calls/s, 64 connections | "
        + " | ".join(f"{med(k, 'rps'):,.0f}" for k in KINDS)
        + f" | verify ≥ 3,000 | {met} |",
        f"| keys checked/s | {med('lookup', 'rps'):,.0f} | {verify_rps:,.0f} | {checks:,.0f} | | |",
        "| p50 / p99 ms | "
        + " | ".join(f"{med(k, 'p50'):.1f} / {med(k, 'p99'):.1f}" for k in KINDS)
        + " | | |",
        "| non-2xx answers | " + " | ".join(f"{med(k, 'non2xx'):.0f}" for k in KINDS) + " | 0 | |",
        *(
            f"| CPU µs per call in {who} | "
            + " | ".join(f"{med(k, 'cpu_' + who):.0f}" for k in KINDS)
            + " | | |"
            for who in ("exchange", "department", "wrk")
        ),
        f"| verify ÷ lookup throughput | | {verify_rps / med('lookup', 'rps'):.2f} | | | |",
        "",
        NOTES.format(
            ratio=med("verify", "cpu_exchange") / med("lookup", "cpu_exchange"),
            verdict=(
                "The ≥ 3,000 verifications/s target was met in this run (the median of its rounds)."
                if verify_rps >= 3000
                else "The ≥ 3,000 verifications/s target was **not reached in this run**; "
                "at the measured CPU ratio a quieter machine might serve it, but that is "
                "an extrapolation, not a measurement."
            ),
            batch=BATCH,
            per_check=med("batch", "cpu_exchange") / BATCH,
            share=med("batch", "cpu_exchange") / BATCH / med("verify", "cpu_exchange"),
        ),
        "",
        "Per round, calls/s: "
        + "; ".join(", ".join(f"{k} {v['rps']:.0f}" for k, v in r.items()) for r in rounds),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
