"""Soak: the exchange's resident memory under steady spread lookups for half an hour.

One invocation on loopback: the mock departments and the exchange (SQLite), each in its
own process, and wrk (1 thread, a fixed number of connections) sending spread lookups
(three consumers, every exchangeable lookup topic of ten departments, keys at random; see
``bench/_stack.py``) at a steady rate for the whole run (``--rate``: requests are held to a
fixed schedule, not sent as fast as possible, so the soak leaves the shared machine's other
work its share and the memory figures belong to a known load). Every 10 s the exchange's
RSS (``VmRSS``) and its count of answered lookups (``/metrics``) are sampled. The verdict:
after the first 2 minutes RSS grows less than 5 % and stays under 300 MB.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 400] [--connections 8]
    .venv/bin/python bench/soak.py --minutes 5 --tracemalloc   # where the memory goes

Results are printed and written to ``bench/results/soak.md`` with the chart
``bench/results/soak-rss.png`` (``--tracemalloc`` writes neither: tracing slows the
exchange and takes memory of its own; it prints the allocation sites that grew between a
snapshot at 2 minutes and one at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from _common import figure, work_dir
from _stack import KEY, ROOT, lua, spread_workload, stack

RESULTS = ROOT / "bench" / "results" / "soak.md"
#: What the hunt for the growth found, and the bounds: explanation, kept in bench/README.md
#: rather than repeated (with old figures) in every results file.
FINDINGS = """\
Where the growth was, and what bounds each structure: `bench/README.md` (section "soak").
"""
OPERATOR = {"Authorization": f"Bearer {KEY}"}
CHART = ROOT / "bench" / "results" / "soak-rss.png"
SAMPLE_S = 10.0
SETTLE_S = 120.0  # growth is judged after the first 2 minutes
MAX_GROWTH = 0.05
MAX_RSS_MB = 300.0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident set size of a process (or its anonymous or file-backed part: ``RssAnon``,
    ``RssFile``), MB, from /proc/<pid>/status."""
    text = Path(f"/proc/{pid}/status").read_text()
    kb = int(figure(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE))
    return kb / 1024


def metrics(http: httpx.Client) -> str:
    """The exchange's /metrics text."""
    for _ in range(2):
        try:
            return http.get("/metrics").text
        except httpx.TransportError:
            # The exchange closes a keep-alive connection idle for 5 s; a sample 10 s
            # later may race that close (connection reset). A fresh connection answers.
            continue
    return http.get("/metrics").text


def outcomes(text: str) -> dict[str, int]:
    """The exchange's broker calls so far by outcome ('ok' or the error code it answered
    with), from its /metrics ``text``: what the non-2xx answers were."""
    found: dict[str, int] = {}
    for m in re.finditer(
        r'^exchange_broker_requests_total\{[^}]*outcome="([^"]*)"[^}]*\} ([\d.e+]+)$', text, re.M
    ):
        found[m.group(1)] = found.get(m.group(1), 0) + int(float(m.group(2)))
    return found


def answered(http: httpx.Client) -> tuple[int, int]:
    """(lookups the exchange has answered, its audit backlog: entries acknowledged but not
    yet committed, held in memory), from /metrics."""
    text = metrics(http)
    backlog = re.search(r"^exchange_audit_backlog ([\d.e+]+)$", text, re.M)
    return sum(outcomes(text).values()), int(float(backlog.group(1))) if backlog else -1


def bounds(http: httpx.Client) -> list[tuple[str, str, float, float, float]]:
    """The exchange's declared structures from /metrics (``exchange.bounds``): name, unit,
    size now, bound and budget in bytes."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, dict[str, float]] = {}
    units: dict[str, str] = {}
    for family in text_string_to_metric_families(metrics(http)):
        for sample in family.samples:
            name = sample.labels.get("structure")
            if name is None or not sample.name.startswith("exchange_bounded_"):
                continue
            found.setdefault(name, {})[sample.name.removeprefix("exchange_bounded_")] = sample.value
            units.setdefault(name, sample.labels.get("unit", ""))
    return [
        (name, units[name], v.get("size", 0), v.get("limit", 0), v.get("budget_bytes", 0))
        for name, v in sorted(found.items())
    ]


def compare(first: Path, last: Path) -> None:
    """Allocation sites whose live memory grew most between two tracemalloc snapshots."""
    import tracemalloc

    old = tracemalloc.Snapshot.load(str(first))
    new = tracemalloc.Snapshot.load(str(last))
    stats = new.compare_to(old, "traceback")
    print("top growth between the snapshots (size, count):")
    for stat in stats[:12]:
        print(f"{stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9d} blocks")
        for line in stat.traceback.format()[-14:]:
            print("    " + line)


def chart(samples: list[tuple[float, float, int]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t / 60 for t, _, _ in samples]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    ax.plot(minutes, [r for _, r, _ in samples], color="tab:blue", label="exchange RSS (MB)")
    ax.axhline(MAX_RSS_MB, color="tab:red", linestyle="--", linewidth=1, label="300 MB limit")
    ax.axvline(SETTLE_S / 60, color="grey", linestyle=":", linewidth=1, label="2 min")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MB")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(minutes, [n / 1e6 for _, _, n in samples], color="tab:green", linewidth=1)
    ax2.set_ylabel("lookups answered (millions)", color="tab:green")
    ax2.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="wrk connections: enough that the rate, not latency, sets the pace.",
    )
    parser.add_argument(
        "--rate", type=float, default=400.0, help="Lookups per second (a steady schedule)."
    )
    parser.add_argument(
        "--keys",
        type=int,
        default=2_000,
        help="Keys per topic to draw from (100000: every person; enterprises stop at 2,000).",
    )
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    work = work_dir("bench-soak-")
    snaps = work / "snapshot" if args.tracemalloc else None
    seconds = int(args.minutes * 60)
    samples: list[tuple[float, float, int]] = []
    #: (anonymous, file-backed) RSS, MB, beside each sample
    parts: list[tuple[float, float]] = []
    load_before = os.getloadavg()
    with stack(work, tracemalloc=snaps) as st:
        workload = spread_workload(st, args.keys)
        script = work / "spread.lua"
        script.write_text(lua(workload, direct=False, rate=args.rate))
        pid = st.exchange.pid
        print(
            f"{len(workload.targets)} topics of {len(workload.providers)} providers, "
            f"{len(workload.consumers)} consumers; exchange pid {pid}, "
            f"RSS {rss_mb(pid):.0f} MB before the load"
        )
        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", str(script), st.ex_url],
            stdout=subprocess.PIPE,
            text=True,
        )
        started = time.monotonic()
        with httpx.Client(base_url=st.ex_url, headers=OPERATOR, timeout=30) as http:
            base = answered(http)[0]
            outcomes_before = outcomes(metrics(http))
            backlogs: list[int] = []
            while wrk.poll() is None:
                elapsed = time.monotonic() - started
                done, backlog = answered(http)
                samples.append((elapsed, rss_mb(pid), done - base))
                parts.append((rss_mb(pid, "RssAnon"), rss_mb(pid, "RssFile")))
                backlogs.append(backlog)
                t, r, n = samples[-1]
                print(
                    f"{t:6.0f} s  RSS {r:6.1f} MB (anonymous {parts[-1][0]:6.1f}, "
                    f"file {parts[-1][1]:6.1f})  {n:>10,} lookups, audit backlog "
                    f"{backlogs[-1]:,}"
                )
                if snaps is not None and len(samples) in (3, int(SETTLE_S / SAMPLE_S) + 1):
                    os.kill(pid, signal.SIGUSR1)  # start tracing at 20 s; snapshot at 2 min
                next_at = started + len(samples) * SAMPLE_S
                while wrk.poll() is None and time.monotonic() < next_at:
                    time.sleep(0.2)
            out = wrk.communicate()[0]
            samples.append((time.monotonic() - started, rss_mb(pid), answered(http)[0] - base))
            parts.append((rss_mb(pid, "RssAnon"), rss_mb(pid, "RssFile")))
            declared = bounds(http)
            failed = {
                code: n - outcomes_before.get(code, 0)
                for code, n in outcomes(metrics(http)).items()
                if code != "ok" and n > outcomes_before.get(code, 0)
            }
            if snaps is not None:
                os.kill(pid, signal.SIGUSR1)
                time.sleep(3)  # the snapshot is written by the exchange
        errors = (work / "exchange.log").read_text(errors="replace")
    load_after = os.getloadavg()
    print(out)
    if snaps is not None:
        first, last = Path(f"{snaps}.1"), Path(f"{snaps}.2")
        for _ in range(60):
            if last.exists():
                break
            time.sleep(1)
        compare(first, last)
        return

    settled = [s for s in samples if s[0] >= SETTLE_S]
    at_settle = settled[0][1]
    end = samples[-1][1]
    peak = max(r for _, r, _ in samples)
    settle = samples.index(settled[0])
    anon_settle, file_settle = parts[settle]
    anon_after = [a for a, _ in parts[settle:]]
    growth = (max(r for _, r, _ in settled) - at_settle) / at_settle
    flush_failures = errors.count("usage flush failed")
    total = samples[-1][2]
    rate = total / samples[-1][0]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines = [
        "# Soak: exchange memory under steady spread lookups",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
        f"`bench/soak.py --minutes {args.minutes:g} --rate {args.rate:g} --connections "
        f"{args.connections} --keys {args.keys}`: wrk "
        f"(1 thread, {args.connections} connections, the whole run) holding the lookups to "
        f"a steady schedule of **{args.rate:g}/s** (missed slots are dropped, not sent in a "
        "burst), the mock departments and the exchange (one process each, **SQLite**, "
        "started fresh) on the same machine, beside other people's work: load average "
        "(1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after. Memory figures do not need an "
        "idle machine; the achieved rate is below.",
        "",
        f"Workload **spread** (warm after its first seconds): {len(workload.targets)} topics "
        f"of {len(workload.providers)} providers, {len(workload.consumers)} consumers, "
        f"one key per request drawn at random from {args.keys:,} per topic (credit codes: "
        f"{min(args.keys, 2000):,}).",
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
        f"| lookups answered | {total:,} in {samples[-1][0] / 60:.1f} min ({rate:,.0f}/s) | | |",
        f"| non-2xx answers (wrk) | {int(non2xx.group(1)) if non2xx else 0:,} | 0 | |",
        "| the exchange's error answers by code (its /metrics) | "
        + (", ".join(f"`{code}` {n:,}" for code, n in sorted(failed.items())) or "none")
        + " | | |",
        f"| RSS before the load | {samples[0][1]:.1f} MB | | |",
        f"| RSS at 2 min | {at_settle:.1f} MB (anonymous {anon_settle:.1f}, file "
        f"{file_settle:.1f}) | | |",
        f"| RSS at the end | {end:.1f} MB (anonymous {parts[-1][0]:.1f}, file "
        f"{parts[-1][1]:.1f}) | | |",
        f"| anonymous RSS after 2 min, lowest – highest | {min(anon_after):.1f} – "
        f"{max(anon_after):.1f} MB | | |",
        f"| highest RSS | {peak:.1f} MB | < 300 MB | {verdict(peak < MAX_RSS_MB)} |",
        f"| growth after 2 min (highest ÷ at 2 min − 1) | {growth:+.1%} | < 5 % | "
        f"{verdict(growth < MAX_GROWTH)} |",
        f"| bytes per lookup after 2 min | "
        f"{(end - at_settle) * 2**20 / max(total - settled[0][2], 1):.1f} | | |",
        f'| "usage flush failed" in the exchange log | {flush_failures} | 0 | |',
        "",
        f"![RSS over the run]({CHART.name})",
        "",
        "What the exchange keeps with a bound, from its `/metrics` at the end of the run "
        "(`src/exchange/bounds.py`; budget = the bound times the bytes per entry measured "
        "with tracemalloc):",
        "",
        "| structure | size at the end | bound | budget |",
        "|---|---|---|---|",
        *(
            f"| `{name}` | {size:,.0f} {unit} | {limit:,.0f} {unit} | {budget / 1e6:,.1f} MB |"
            for name, unit, size, limit, budget in declared
        ),
        f"| together | | | {sum(b[4] for b in declared) / 1e6:,.1f} MB |",
        "",
        "Samples every minute (s, RSS MB, lookups answered): "
        + "; ".join(f"{t:.0f} {r:.1f} {n:,}" for t, r, n in samples[:: int(60 / SAMPLE_S)]),
        "",
        FINDINGS,
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    chart(samples, CHART, f"exchange RSS, spread lookups, {args.connections} connections")


if __name__ == "__main__":
    main()
