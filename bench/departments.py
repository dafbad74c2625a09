"""Benchmark of the mock department runtime: single lookups/s and bulk-export records/s.

Everything runs on loopback in one invocation, against one department server process:

* baseline: a bare ASGI "hello" app on the same stack (uvicorn + httptools + uvloop), so
  the figures can be read against what this (shared, noisy) machine does at all;
* single lookups: ``GET /departments/gaj/topics/household-registration/records/{id}``
  cycling over 10,000 ID numbers that exist, driven by ``wrk`` (one thread, 64 connections);
* bulk export: the whole household-registration table as NDJSON over HTTP, cold (derived
  on the fly) and warm (serialised chunks cached), plus orjson encoding of records in-process;
* cold start: every exportable topic's first export from the fresh department (nothing
  cached) against its second (warm), both read by curl, in the same run; and people
  derived one at a time (``City.person``) against in bulk (``bulk.people``), in process.

Load generator: ``wrk`` (Debian: ``apt-get install -y wrk``); export reader ``curl``. Run:

    .venv/bin/python bench/departments.py [--rounds 5] [--seconds 5] [--population 100000]

Results are printed and written to ``bench/results/departments.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from _common import curl_export, figure, free_port, start_departments, wait_up

from exchange.departments import bulk, tables
from exchange.departments.chunks import EXPORT_CHUNK
from exchange.departments.city import City
from exchange.departments.definitions import load_definitions
from exchange.departments.exporter import build_span, span_of
from exchange.departments.records import GENERATORS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "departments.md"
KEY = "bench-operator"
# The departments answer data calls only when the exchange signed them; wrk cannot sign,
# so this benchmark of a department alone gives them an explicit direct-access key.
DIRECT_KEY = "bench-direct-access"
DIRECT = {"Authorization": f"Bearer {DIRECT_KEY}"}
TOPIC = "/departments/gaj/topics/household-registration"

HELLO_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b'{"hello":"world"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def start_hello(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    (workdir / "hello_app.py").write_text(HELLO_APP)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "hello_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=workdir,
    )


def wrk(url: str, seconds: int, script: Path | None) -> tuple[float, int]:
    """(requests/s, non-2xx count) of one wrk run."""
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(figure(r"Requests/sec:\s+([\d.]+)", out))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def export_rate(base: str, population: int) -> tuple[float, int, int]:
    """(records/s, records, bytes) of one full export over HTTP."""
    started = time.perf_counter()
    lines = size = 0
    with httpx.stream(
        "GET", f"{base}{TOPIC}/export", params={"limit": population}, headers=DIRECT, timeout=600
    ) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_raw(1 << 20):
            lines += chunk.count(b"\n")
            size += len(chunk)
    spent = time.perf_counter() - started
    return lines / spent, lines, size


def curl_rate(base: str, population: int, records: int) -> float:
    """records/s of one full export read by curl (a C client, so Python is not the limit)."""
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            "-H",
            f"Authorization: Bearer {DIRECT_KEY}",
            f"{base}{TOPIC}/export?limit={population}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return records / float(out[1])


def exportable_topics() -> list[tuple[str, str, str]]:
    """(department, slug, generator) of every topic the services offer for export."""
    found = []
    for code, dept in sorted(load_definitions(ROOT / "services").items()):
        for t in dept.topics:
            if t.export:
                found.append((code, t.slug, t.generator))
    return found


def people_rates(city: City, n: int, rounds: int) -> tuple[list[float], list[float]]:
    """People/s derived one at a time (``City._person``, uncached) and in bulk."""
    scalar: list[float] = []
    vector: list[float] = []
    for r in range(rounds):
        start = 10_000 + r * n
        t0 = time.perf_counter()
        for i in range(start, start + n):
            city._person(i)
        scalar.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        bulk.people(city, start + n * rounds, start + n * rounds + n)
        vector.append(n / (time.perf_counter() - t0))
    return scalar, vector


def derive_rates(city: City) -> list[tuple[str, float]]:
    """Records per CPU second of each exportable topic's whole table, in process, derived
    as an export worker derives it: after the worker's start (:func:`tables.warm`: the
    lookup tables and the city's register), :func:`build_span` of :func:`span_of` chunks a
    call (4 chunks of 2,048 rows)."""
    # The worker's own city: what is kept for it (the register) stays out of the other
    # measurements, which use ``city``.
    city = City(city.seed, city.population, city.enterprises)
    tables.warm(city)
    out = []
    for code, slug, generator in exportable_topics():
        rows = GENERATORS[generator].rows(city)
        fields = GENERATORS[generator].fields
        span = span_of(generator)
        started = time.process_time()
        n = 0
        for start in range(0, rows, span * EXPORT_CHUNK):
            for block in build_span(city, generator, fields, 0.0, 0, start, span, EXPORT_CHUNK):
                n += len(block)
        out.append((f"{code} {slug}", n / (time.process_time() - started)))
    return out


def fmt(values: list[float]) -> str:
    """Rounds of a measurement, for the report."""
    return ", ".join(f"{x:,.0f}" for x in values)


def encode_rate(city: City, n: int) -> float:
    """orjson NDJSON encoding of already-derived records, in records/s."""
    gen = GENERATORS["household_registration"]
    records = list(gen.export(city, 0, n))
    best = []
    for _ in range(5):
        started = time.perf_counter()
        b"".join(orjson.dumps(r) + b"\n" for r in records)
        best.append(time.perf_counter() - started)
    return n / statistics.median(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--population", type=int, default=100_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    city = City(2020, args.population, 20_000)
    keys = city.sample_id_numbers(10_000, seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "keys.lua"
        script.write_text(
            "local keys = {" + ",".join(f'"{k}"' for k in keys) + "}\n"
            "local i = 0\n"
            f'wrk.headers["Authorization"] = "Bearer {DIRECT_KEY}"\n'
            "request = function()\n"
            "  i = i % #keys + 1\n"
            f'  return wrk.format("GET", "{TOPIC}/records/" .. keys[i])\n'
            "end\n"
        )
        dport, hport = free_port(), free_port()
        dept = start_departments(dport, args.population, KEY, DIRECT_KEY)
        hello = start_hello(hport, work)
        try:
            base = f"http://127.0.0.1:{dport}"
            wait_up(f"{base}/departments/gaj", dept)
            wait_up(f"http://127.0.0.1:{hport}/", hello)
            # The definition's default latency would measure asyncio.sleep, not the runtime.
            httpx.put(
                f"{base}/departments/_faults/gaj",
                json={"latency_ms": 0, "jitter_ms": 0},
                headers={"Authorization": f"Bearer {KEY}"},
            ).raise_for_status()
            # Warm the per-key caches once, as a long-running department would be.
            wrk(f"{base}{TOPIC}/records/x", 2, script)

            hello_rps: list[float] = []
            lookup_rps: list[float] = []
            errors = 0
            for _ in range(args.rounds):
                hello_rps.append(wrk(f"http://127.0.0.1:{hport}/", args.seconds, None)[0])
                rps, bad = wrk(f"{base}{TOPIC}/records/x", args.seconds, script)
                lookup_rps.append(rps)
                errors += bad

            # Cold start first, while nothing is cached: every exportable topic's first
            # export, then its second.
            cold_topics: list[tuple[str, int, float, float]] = []
            for code, slug, generator in exportable_topics():
                path = f"/departments/{code}/topics/{slug}"
                rows = GENERATORS[generator].rows(city)
                first, n = curl_export(base, path, rows, work / "cold.ndjson", DIRECT_KEY)
                # Warm: the median of three reads (one read of 0.02-0.1 s moved 2x).
                second = statistics.median(
                    curl_export(base, path, rows, work / "warm.ndjson", DIRECT_KEY)[0]
                    for _ in range(3)
                )
                cold_topics.append((f"{code} {slug}", n, first, second))
                print(f"{code} {slug}: cold {first:,.0f}/s, warm {second:,.0f}/s ({n:,})")
            # Household registration is warm now (its row above): the whole table by
            # Python httpx and by curl, read again.
            _, cold_n, cold_bytes = export_rate(base, args.population)
            warm_rates = [curl_rate(base, args.population, cold_n) for _ in range(args.rounds)]
            client_rates = [export_rate(base, args.population)[0] for _ in range(args.rounds)]
            encode = encode_rate(city, min(args.population, 50_000))
            bulk.people(city, 0, 10)  # its tables are built once per process
            scalar_people, bulk_people = people_rates(city, 5_000, args.rounds)
        finally:
            for proc in (dept, hello):
                proc.terminate()
                proc.wait(timeout=10)

    med_hello = statistics.median(hello_rps)
    med_lookup = statistics.median(lookup_rps)
    med_warm = statistics.median(warm_rates)
    med_client = statistics.median(client_rates)
    mb = cold_bytes / 1e6
    cold_rows = "\n".join(
        f"| {name} | {n:,} | {first:,.0f} | {second:,.0f} | {first / second:.0%} "
        f"| {'yes' if first >= second / 2 else '**no**'} |"
        for name, n, first, second in cold_topics
    )
    met = sum(first >= second / 2 for _, _, first, second in cold_topics)
    hh_cold = next(rate for name, _, rate, _ in cold_topics if name == "gaj household-registration")
    derive_rows = "; ".join(f"{name} {rate:,.0f}" for name, rate in derive_rates(city))
    med_scalar, med_bulk = statistics.median(scalar_people), statistics.median(bulk_people)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report = f"""# Mock departments benchmark

Measured in one run of `bench/departments.py` on {platform.node()} ({os.cpu_count()} CPUs,
Python {platform.python_version()}), {time.strftime("%Y-%m-%d %H:%M")}. Load generator `wrk`
(one thread, 64 connections, {args.seconds} s per round) on the same machine, loopback only.
City: seed 2020, {args.population:,} people, 20,000 enterprises. Medians of {args.rounds}
rounds. The machine is shared and was busy (load average {load} at the end: other people's
test suites), so absolute rates move between runs; compare figures of the same run.

## Single lookups (one department process)

`GET {TOPIC}/records/{{id}}` over 10,000 distinct ID numbers that exist; faults off.

| what | median req/s | rounds |
|---|---:|---|
| baseline: bare ASGI hello, same server stack | {med_hello:,.0f} | {fmt(hello_rps)} |
| household-registration single lookup | **{med_lookup:,.0f}** | {fmt(lookup_rps)} |

Lookup throughput is {med_lookup / med_hello:.0%} of the bare-stack baseline; target ≥ 8,000
req/s: **{"met" if med_lookup >= 8000 else "NOT met"}**. Non-2xx responses: {errors}.

## Bulk export (NDJSON over HTTP, the whole table)

| what | records/s | detail |
|---|---:|---|
| cold: first export, read by curl | {hh_cold:,.0f} | {cold_n:,} records, {mb:.1f} MB |
| warm: chunks cached, read by curl, median | **{med_warm:,.0f}** | {fmt(warm_rates)} |
| warm, read and line-counted by Python httpx | {med_client:,.0f} | {fmt(client_rates)} |
| orjson encoding of derived records, in process | {encode:,.0f} | NDJSON lines |

Target ≥ 1,000,000 records/s serialised: **{"met" if med_warm >= 1_000_000 else "NOT met"}**
for warm exports. Cold: {hh_cold / med_warm:.0%} of the warm curl rate and
{hh_cold / med_client:.0%} of the warm httpx rate. A cold export is bound by deriving the
records (the city stores no rows); its chunks are then kept (256 MB budget) so later
exports and pages stream at the warm rate.

## Cold start: every exportable topic from the fresh department

Each topic's whole table exported twice, read by curl: first from the fresh process
(**cold**: derived on demand as columns over NumPy arrays, `exchange.departments.tables`,
by the department's export worker processes, 2 by default, 4 chunks of 2,048 source
rows a call, ahead of the page being sent; the workers start before the department
answers, each deriving 64 rows of every table to build its lookup tables and keeping the
city's register of couples and jobs (26 bytes a person, ~30 ms for 100,000 people): no
record of any topic is derived before the first call), then three times more (**warm**:
the serialised chunks cached; the median of the three reads). The public security
bureau's latency is off here (set to 0 for the lookups above), so its two topics
(household, vehicles) are read with none, while the other departments keep their defined
latency and jitter, as in `cold-start.md`, whose rounds are the committed cold-start
figures. Target: cold ≥ 50 % of warm; met for {met} of {len(cold_topics)} topics.

| topic | records | cold records/s | warm records/s | cold ÷ warm | ≥ 50 % |
|---|---:|---:|---:|---:|---|
{cold_rows}

In process, one core, each topic's whole table derived and serialised as an export worker
does it (after its start: the lookup tables and the city's register of couples and jobs
made, `tables.warm`; then `build_span` of `span_of` chunks a call: 8,192 rows; records per
CPU second, `time.process_time`, so the machine's load counts less):
{derive_rows}

People derived in process, {args.rounds} rounds of 5,000 (medians): one at a time
(`City.person`, the single-lookup path) {med_scalar:,.0f}/s ({fmt(scalar_people)}); in bulk
(`bulk.people`, the export path) **{med_bulk:,.0f}/s** ({fmt(bulk_people)}):
{med_bulk / med_scalar:.1f}×.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
