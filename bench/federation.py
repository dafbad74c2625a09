"""Across both levels, in the same run as their single-exchange baselines.

Lookups: a provincial department through the province's exchange and the city's, against a
city consumer through the city's exchange alone; wrk, alternating: throughput at 16
connections and latency at one (the hop's added latency is the difference of the medians).

Bulk provision upward: the province pulls the city's household-registration topic (one
record per person) page by page from its watermark, from a cold source (the department's
cached chunks of the topic dropped first), against the same records exported through the
city's exchange alone (the baseline: cold, then warm). Then people are born at the city and
the province pulls only what was added.

Starts a city and a province (`exchange up`, SQLite each, their mock departments inside;
`--city-workers 2`: the city as `exchange up --workers 2`, its departments in a process of
their own). Each case rewrites its own results file, whole, from what it measured:
bench/results/federation-lookups.md and bench/results/federation-provision.md (`--only`
runs one case and leaves the other's file as it is).

    .venv/bin/python bench/federation.py [--seconds 10] [--rounds 2] [--connections 16]
        [--population 1000000] [--page 20000] [--only provision] [--city-workers 1]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, free_port, setting, wait_up, work_dir

from exchange.config import Settings
from exchange.departments.city import City
from exchange.provider_auth import derive_provider_secret
from exchange.security import demo_key

RESULTS = Path(__file__).resolve().parent / "results"
#: each case's results file, rewritten whole by a run that measured that case
LOOKUPS_MD, PROVISION_MD = RESULTS / "federation-lookups.md", RESULTS / "federation-provision.md"
CITY_SECRET, PROVINCE_SECRET = "exms_bench-city", "exms_bench-province"
CITY_OP, PROVINCE_OP = "exk_operator_bench-city", "exk_operator_bench-province"
ITEMS = ["credit_code", "name", "status"]


def start(
    level: str, port: int, peer_port: int, workdir: Path, population: int, workers: int = 1
) -> subprocess.Popen[bytes]:
    province = level == "province"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        EXCHANGE_PORT=str(port),
        EXCHANGE_OPERATOR_KEY=PROVINCE_OP if province else CITY_OP,
        EXCHANGE_PROVIDER_SECRET=PROVINCE_SECRET if province else CITY_SECRET,
        EXCHANGE_PEER_URL=f"http://127.0.0.1:{peer_port}",
        EXCHANGE_PEER_CREDENTIAL=derive_provider_secret(
            CITY_SECRET if province else PROVINCE_SECRET, "gdzsj" if province else "gz"
        ),
        EXCHANGE_LOG_LEVEL="warning",
        EXCHANGE_POPULATION=str(population),
        # A still city: the provision's incremental step adds exactly what it triggers.
        EXCHANGE_CITY_CHANGE_SCALE="0",
    )
    if province:
        env["EXCHANGE_LEVEL"] = "province"
    workdir.mkdir(parents=True, exist_ok=True)
    out = (workdir / "log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "up", "--workers", str(workers)],
        env=env,
        cwd=workdir,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    wait_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=300)
    return proc


def publish_and_mount(http: httpx.Client, city: str, province: str, slug: str) -> tuple[str, str]:
    """The city's topic ``slug`` published and mounted at the province (whose sync is
    kicked until it lists the topic): (the city's code, the province's)."""
    op = {"Authorization": f"Bearer {CITY_OP}"}
    pop = {"Authorization": f"Bearer {PROVINCE_OP}"}
    topics = http.get(f"{city}/api/v1/catalog/topics", params={"limit": 100}, headers=op)
    code = next(t["resource_code"] for t in topics.json()["items"] if t.get("slug") == slug)
    http.post(
        f"{city}/api/v1/federation/publications", json={"resource_codes": [code]}, headers=op
    ).raise_for_status()
    for _ in range(300):
        http.post(f"{province}/api/v1/federation/sync", headers=pop)
        found = http.get(
            f"{province}/api/v1/catalog/topics",
            params={"provider": "gz", "limit": 100},
            headers=pop,
        ).json()["items"]
        mounted = next((t["resource_code"] for t in found if f"源目录 {code}" in t["tags"]), None)
        if mounted:
            return code, mounted
        time.sleep(0.2)
    raise SystemExit("the province did not mount the topic")


def apply(http: httpx.Client, url: str, key: str, topic: str) -> None:
    resp = http.post(
        f"{url}/api/v1/applications",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "topic": topic,
            "items": ITEMS,
            "purpose": {"scope": "data_verification", "text": "benchmark"},
            "legal_function": "benchmark",
            "valid_until": "2029-12-31",
        },
    )
    if resp.status_code not in (200, 201) or resp.json()["status"] != "approved":
        raise SystemExit(f"the grant was not approved: {resp.text}")


def lua(path: str, key: str, codes: list[str]) -> str:
    pool = ",".join(f'"{c}"' for c in codes)
    return (
        f"local pool = {{{pool}}}\nmath.randomseed(2020)\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "request = function()\n"
        f'  return wrk.format(nil, "{path}", nil, '
        '\'{"keys":["\' .. pool[math.random(#pool)] .. \'"],"items":["credit_code","name"]}\')\n'
        "end\n"
    )


def wrk(url: str, script: Path, connections: int, seconds: int) -> tuple[float, float, int]:
    """(requests/s, median latency ms, non-2xx) of one wrk run."""
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "1" if connections == 1 else "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    rps = float(figure(r"Requests/sec:\s+([\d.]+)", out))
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None, out
    median = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, median, int(bad.group(1)) if bad else 0


def apply_items(http: httpx.Client, url: str, key: str, topic: str, items: list[str]) -> None:
    resp = http.post(
        f"{url}/api/v1/applications",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "topic": topic,
            "items": items,
            "purpose": {"scope": "business_collaboration", "text": "benchmark"},
            "legal_function": "benchmark",
            "valid_until": "2029-12-31",
        },
    )
    if resp.status_code not in (200, 201) or resp.json()["status"] not in ("approved", "pending"):
        raise SystemExit(f"the application failed: {resp.text}")
    if resp.json()["status"] == "pending":
        raise SystemExit(f"the grant was not approved at once: {resp.text}")


def provisioned(http: httpx.Client, province: str, op: dict[str, str], code: str) -> int:
    found = http.get(f"{province}/api/v1/federation/provisions", headers=op).json()["items"]
    return next((int(p["records"]) for p in found if p["resource_code"] == code), 0)


def wait_records(
    http: httpx.Client,
    province: str,
    op: dict[str, str],
    code: str,
    want: int,
    limit: float,
    stalls: list[float] | None = None,
) -> float:
    """Seconds until the province has stored ``want`` records of ``code`` (polled); the
    longest stretch with no record stored goes into ``stalls`` (the pull standing still)."""
    started = last_move = time.perf_counter()
    have, longest = 0, 0.0
    while (now := provisioned(http, province, op, code)) < want:
        if now != have:
            have, last_move = now, time.perf_counter()
        longest = max(longest, time.perf_counter() - last_move)
        if time.perf_counter() - started > limit:
            raise SystemExit(f"the province did not store {want:,} records within {limit:.0f} s")
        time.sleep(0.02)
    if stalls is not None:
        stalls.append(max(longest, time.perf_counter() - last_move))
    return time.perf_counter() - started


def provision_case(
    http: httpx.Client, city: str, province: str, rounds: int
) -> dict[str, list[float]]:
    """Baseline export through the city alone vs the province's pull, records/s; then the
    incremental pull of what was added (births)."""
    op = {"Authorization": f"Bearer {CITY_OP}"}
    pop = {"Authorization": f"Bearer {PROVINCE_OP}"}
    code, mounted = publish_and_mount(http, city, province, "household-registration")
    items = ["id_number", "name", "sex", "birth_date", "status"]
    apply_items(http, city, demo_key(CITY_OP, "gdzsj"), code, items)
    key = {"Authorization": f"Bearer {demo_key(CITY_OP, 'gdzsj')}"}
    out: dict[str, list[float]] = {"export": [], "cold": [], "provision": [], "incremental": []}
    total = 0
    for i in range(rounds + 1):
        started = time.perf_counter()
        with http.stream(
            "GET",
            f"{city}/api/v1/exchange/{code}/export",
            params={"limit": 1_000_000, "items": ",".join(items)},
            headers=key,
        ) as resp:
            resp.raise_for_status()
            total = sum(chunk.count(b"\n") for chunk in resp.iter_bytes())
        (out["cold"] if i == 0 else out["export"]).append(total / (time.perf_counter() - started))
    # The province's first pull reads rows nobody has just read (a topic is provided once):
    # the department's cached chunks of the topic are dropped first (its noise set and
    # reset through the fault control, which forgets them), so the pull derives its rows
    # like the cold export above.
    faults = f"{city}/departments/_faults/gaj/household-registration"
    http.put(faults, json={"noise_rate": 0.001}, headers=op).raise_for_status()
    http.delete(faults, headers=op).raise_for_status()
    # The province pulls it all, from watermark 0, page by page.
    http.post(
        f"{province}/api/v1/federation/provisions", json={"resource_codes": [mounted]}, headers=pop
    ).raise_for_status()
    seconds = wait_records(http, province, pop, mounted, total, 600, out.setdefault("stall", []))
    out["provision"].append(total / seconds)
    out["seconds"] = [seconds]
    out["records"] = [float(total)]
    # Incremental: people are born at the city, the province pulls only those (rows past
    # its watermark, and their change events), timed from the first pull that sees them.
    operator = {"Authorization": f"Bearer {CITY_OP}"}
    for _ in range(rounds):
        have = provisioned(http, province, pop, mounted)
        born = 0
        for _ in range(20):
            made = http.post(f"{city}/departments/_changes/birth", headers=operator)
            made.raise_for_status()
            born += len(made.json()["events"])
        started = time.perf_counter()
        http.post(f"{province}/api/v1/federation/provisions/pull", headers=pop)
        got = provisioned(http, province, pop, mounted) - have
        out["incremental"].append(time.perf_counter() - started)
        out.setdefault("incremental_records", []).append(float(got))
    return out


Runs = dict[str, list[tuple[float, float, int]]]


def lookup_case(
    http: httpx.Client, city: str, province: str, tmp: Path, args: argparse.Namespace
) -> Runs:
    """wrk runs of both paths, alternating: (requests/s, median ms, non-2xx) of each run,
    per case, in the order run."""
    op = {"Authorization": f"Bearer {CITY_OP}"}
    code, mounted = publish_and_mount(http, city, province, "enterprise-registration")
    apply(http, city, demo_key(CITY_OP, "gdzsj"), code)
    apply(http, province, demo_key(PROVINCE_OP, "gd-scjgj"), mounted)
    codes = City(2020, args.population, 20_000).sample_credit_codes(500, seed=11)
    single = tmp / "single.lua"
    single.write_text(lua(f"/api/v1/exchange/{code}/query", demo_key(CITY_OP, "gdzsj"), codes))
    cross = tmp / "cross.lua"
    cross.write_text(
        lua(f"/api/v1/exchange/{mounted}/query", demo_key(PROVINCE_OP, "gd-scjgj"), codes)
    )
    # Warm both paths (connections, caches, the provider's first answers).
    wrk(city, single, 4, 3)
    wrk(province, cross, 4, 3)
    keys = ("s16", "c16", "s1", "c1", "s1steady", "c1steady", "s1instant", "c1instant")
    runs: Runs = {k: [] for k in keys}
    for _ in range(args.rounds):
        runs["s16"].append(wrk(city, single, args.connections, args.seconds))
        runs["c16"].append(wrk(province, cross, args.connections, args.seconds))
        runs["s1"].append(wrk(city, single, 1, args.seconds))
        runs["c1"].append(wrk(province, cross, 1, args.seconds))
    # The department answers after 4 ms plus up to 6 ms of jitter (services/scjgj.yaml),
    # the same in both cases: the difference of two medians then carries the sampling
    # noise of two wide distributions (~±0.2 ms at 1,000 lookups each). The same pair
    # again with the jitter off measures the hop itself more finely. A third pair with the
    # department answering at once separates the exchanges' own cost from what the 4 ms
    # sleep adds to it: between two calls the processes go idle, and every step of the next
    # call runs on cold caches and pays a wake-up.
    faults = f"{city}/departments/_faults/scjgj"
    try:
        http.put(faults, json={"jitter_ms": 0}, headers=op).raise_for_status()
        for _ in range(args.rounds):
            runs["s1steady"].append(wrk(city, single, 1, args.seconds))
            runs["c1steady"].append(wrk(province, cross, 1, args.seconds))
        http.put(faults, json={"latency_ms": 0, "jitter_ms": 0}, headers=op).raise_for_status()
        for _ in range(args.rounds):
            runs["s1instant"].append(wrk(city, single, 1, args.seconds))
            runs["c1instant"].append(wrk(province, cross, 1, args.seconds))
    finally:
        http.delete(faults, headers=op).raise_for_status()
    return runs


def header(args: argparse.Namespace, load: tuple[float, float, float], case: str) -> list[str]:
    """The title and setting shared by both cases' results files."""
    return [
        f"# Across levels: {case}",
        "",
        'How to read these figures: `bench/README.md` (section "federation").',
        "",
        setting(load),
        "",
        "A city and a province (`exchange up` each, SQLite each; mock departments inside"
        + (
            ", one process each"
            if args.city_workers == 1
            else f"; the city: {args.city_workers} exchange processes "
            "and its departments in a process of their own"
        )
        + ") on this machine, with the load generator; "
        f"{args.population:,} people in the synthetic city.",
        "",
    ]


def lookups_report(args: argparse.Namespace, runs: Runs) -> list[str]:
    med = {
        k: (
            statistics.median(r[0] for r in v),
            statistics.median(r[1] for r in v),
            sum(r[2] for r in v),
        )
        for k, v in runs.items()
    }
    ratio = med["c16"][0] / med["s16"][0]
    hop = med["c1steady"][1] - med["s1steady"][1]
    busypoll_default = Settings.model_fields["busy_poll_us"].default

    def latency(label: str, key: str) -> str:
        single, crossing = med[f"s1{key}"][1], med[f"c1{key}"][1]
        # Each round's pair (single then crossing, back to back) as well: the spread
        # between rounds says how far the difference of the medians can be trusted.
        pairs = zip(runs[f"s1{key}"], runs[f"c1{key}"], strict=True)
        rounds = ", ".join(f"{c[1] - s[1]:+.2f}" for s, c in pairs)
        return (
            f"| median latency, 1 connection, {label} | {single:.2f} ms | {crossing:.2f} ms "
            f"| {crossing - single:+.2f} ms (rounds: {rounds}) |"
        )

    bad = (
        sum(med[k][2] for k in med if k.startswith("s")),
        sum(med[k][2] for k in med if k.startswith("c")),
    )
    return [
        "## Lookups",
        "",
        "The city's enterprise-registration topic published to the province and mounted",
        "there. Single: the province's unit at the city (`gdzsj`) asks the city's broker.",
        "Crossing: the provincial market regulator (`gd-scjgj`) asks the province's broker,",
        "which asks the city's federation endpoint. One random key of 500 enterprises per",
        f"lookup, two items; wrk, single and crossing alternating, {args.rounds} rounds of "
        f"{args.seconds} s each per row, warm; medians. The department (`scjgj`) answers after",
        "4 ms plus up to 6 ms of jitter as configured (services/scjgj.yaml); the last two",
        "latency rows set its jitter, then its latency too, to 0 through its fault control.",
        "The added latency is the difference of the two medians; in brackets each round's",
        "own difference (its single and crossing runs back to back), whose spread is the",
        "figure's noise.",
        "",
        "| case | single (city) | crossing (province → city) | ratio / added |",
        "|---|---|---|---|",
        f"| throughput, {args.connections} connections | {med['s16'][0]:,.0f} req/s "
        f"| {med['c16'][0]:,.0f} req/s | {ratio:.0%} (target ≥ 40 %) |",
        latency("department as configured", ""),
        latency("department without jitter (the target's case)", "steady"),
        latency("department answering at once", "instant"),
        f"| non-2xx answers | {bad[0]} | {bad[1]} | |",
        "",
        "Target: the added median latency per hop ≤ 0.5 ms at one connection, read on the",
        f"row without jitter (a department that takes time, as every real one does): "
        f"{hop:+.2f} ms, **{'met' if hop <= 0.5 else 'not met'}**. Both exchanges run with "
        f"their defaults, busy-polling included ({busypoll_default} µs, not for a provider "
        "whose recent lone answers all took longer: src/exchange/busypoll.py).",
        "",
    ]


def provision_report(args: argparse.Namespace, prov: dict[str, list[float]]) -> list[str]:
    total = int(prov["records"][0])
    inc = prov["incremental"]
    return [
        "## Bulk provision upward",
        "",
        f"The city's household-registration topic ({total:,} records, five items) published",
        "and mounted; the city grants the province's unit. Baseline: the same records",
        "exported through the city's exchange alone by that unit (the first, cold export",
        "derives the people; the later ones are warm). Provision: the department's cached",
        "chunks of the topic dropped (a cold source, as for the first export), the province",
        f"pulls from watermark 0 in pages of {args.page:,} export rows (signed call, the",
        "city's grant check and filter, the department's export, the signed page stored",
        "with its watermark in one commit at the province), timed until it has stored all",
        "of them.",
        "Incremental: 20 births at the city, then one pull of what is past the watermark.",
        "",
        "| case | records/s |",
        "|---|---|",
        f"| export through the city alone, cold | {prov['cold'][0]:,.0f} |",
        f"| export through the city alone, warm (median of {len(prov['export'])}) "
        f"| {statistics.median(prov['export']):,.0f} |",
        f"| provision upward, province pulls from its watermark, cold source "
        f"| **{prov['provision'][0]:,.0f}** (target ≥ 200,000) |",
        "",
        f"The pull took {prov['seconds'][0]:.2f} s; the longest stretch in it with no "
        f"record stored (polled every 20 ms) was {prov['stall'][0]:.2f} s.",
        "",
        f"Incremental pull of the births: median {statistics.median(inc) * 1000:.0f} ms for "
        f"{statistics.median(prov['incremental_records']):.0f} new records (a round trip "
        "and a commit; the rate means nothing at this size).",
        "",
    ]


def write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--population", type=int, default=1_000_000)
    ap.add_argument("--page", type=int, default=20_000, help="rows per provision page")
    ap.add_argument("--only", choices=("all", "lookups", "provision"), default="all")
    ap.add_argument(
        "--city-workers",
        type=int,
        default=1,
        help="exchange processes of the city (`exchange up --workers N`; above 1 its mock "
        "departments run in a process of their own)",
    )
    args = ap.parse_args()
    load_before = os.getloadavg()
    city_port, province_port = free_port(), free_port()
    tmp = work_dir("bench-federation-")
    os.environ["EXCHANGE_FEDERATION_PAGE"] = str(args.page)
    procs = [start("province", province_port, city_port, tmp / "province", args.population)]
    procs.append(
        start("city", city_port, province_port, tmp / "city", args.population, args.city_workers)
    )
    city, province = f"http://127.0.0.1:{city_port}", f"http://127.0.0.1:{province_port}"
    runs: Runs = {}
    prov: dict[str, list[float]] = {}
    try:
        http = httpx.Client(timeout=600)
        if args.only in ("all", "lookups"):
            runs = lookup_case(http, city, province, tmp, args)
        if args.only in ("all", "provision"):
            prov = provision_case(http, city, province, args.rounds)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    if runs:
        write(
            LOOKUPS_MD,
            header(args, load_before, "a lookup crossing province and city, beside the city alone")
            + lookups_report(args, runs),
        )
    if prov:
        write(
            PROVISION_MD,
            header(args, load_before, "bulk provision upward, beside the city's own export")
            + provision_report(args, prov),
        )


if __name__ == "__main__":
    main()
