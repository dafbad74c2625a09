"""Cold start of the mock departments, tree against tree: every exportable topic's first
export from a fresh department process (cold) against its later ones (warm), read by curl.

Each ``--tree`` (a checkout's root; the first is the baseline) runs a department server of
its own source (``PYTHONPATH=TREE/src``), fresh for every round; rounds alternate the trees
(A B A B …), so the machine's load falls on both alike. Per topic and tree: the cold rate of
each round, the warm rate (the median of three reads after the cold one), cold ÷ warm per
round, and whether ≥ 50 % held in every round. Loopback only; the server is stopped after
each round. Run:

    .venv/bin/python bench/cold_start.py --tree /tmp/old --tree . [--rounds 3]

Written to ``bench/results/cold-start.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
from _common import curl_export, free_port, start_departments, wait_up, work_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cold-start.md"
KEY = "bench-operator"
DIRECT_KEY = "bench-direct-access"
#: records of each topic's whole export, by "department slug" (from the last round)
RECORDS: dict[str, int] = {}


def start(tree: Path, port: int, population: int, log: Path) -> subprocess.Popen[bytes]:
    return start_departments(port, population, KEY, DIRECT_KEY, src=tree / "src", log=log)


def build_kernels(tree: Path) -> None:
    """Build a tree's compiled kernels in place when it has them but they were never built
    (a `git worktree` made for a baseline): its departments would derive in NumPy, and
    the run would measure the tree without them. Compiled as setup.py's build would (one C
    file against this Python's headers), not through setup.py: the venv's own setuptools
    may be older than the one pyproject.toml asks a build for."""
    source = tree / "src" / "exchange" / "departments" / "_kernels.c"
    if not source.exists() or list(source.parent.glob("_kernels.*.so")):
        return
    print(f"building {source.relative_to(tree)} in {tree}")
    target = source.with_name("_kernels" + sysconfig.get_config_var("EXT_SUFFIX"))
    compiler = str(sysconfig.get_config_var("CC") or "cc").split()
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        [*compiler, "-O3", "-shared", "-fPIC", f"-I{include}", str(source), "-o", str(target)],
        check=True,
    )


def topics(tree: Path) -> list[tuple[str, str, int]]:
    """(department, slug, rows) of every exportable topic, as ``tree`` defines them."""
    code = (
        "from pathlib import Path\n"
        "from exchange.departments.city import City\n"
        "from exchange.departments.definitions import load_definitions\n"
        "from exchange.departments.records import GENERATORS\n"
        "city = City(2020, 100_000, 20_000)\n"
        f"for c, d in sorted(load_definitions(Path({str(tree / 'services')!r})).items()):\n"
        "    for t in d.topics:\n"
        "        if t.export:\n"
        "            print(c, t.slug, GENERATORS[t.generator].rows(city))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(c, s, int(n)) for c, s, n in (line.split() for line in out.splitlines())]


def one_round(
    tree: Path, population: int, work: Path, wanted: list[tuple[str, str, int]]
) -> dict[str, tuple[float, float, float]]:
    """Per topic: (cold, warm, re-derived) records/s, in one fresh department process."""
    port = free_port()
    proc = start(tree, port, population, work / "server.log")
    out: dict[str, tuple[float, float, float]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/departments/gaj", proc, timeout=120)
        op = {"Authorization": f"Bearer {KEY}"}
        for code in sorted({code for code, _, _ in wanted}):
            # The departments' injected errors off (their latency stays): one 502 in 500
            # (real estate's) failed a read, and a read retried after it would no longer be
            # cold (the first window is derived during the latency, before the error).
            httpx.put(
                f"{base}/departments/_faults/{code}", json={"error_rate": 0.0}, headers=op
            ).raise_for_status()
        for code, slug, rows in wanted:
            path = f"/departments/{code}/topics/{slug}"
            cold, records = curl_export(base, path, rows, work / "cold.ndjson", DIRECT_KEY)
            warm = statistics.median(
                curl_export(base, path, rows, work / "warm.ndjson", DIRECT_KEY)[0] for _ in range(3)
            )
            # The topic's chunks dropped (its noise set and reset through the fault
            # control forgets them), as a long load test's cache budget drops them: the
            # next export derives them again in a process that has run for a while.
            faults = f"{base}/departments/_faults/{code}/{slug}"
            httpx.put(faults, json={"noise_rate": 0.001}, headers=op).raise_for_status()
            httpx.delete(faults, headers=op).raise_for_status()
            again = curl_export(base, path, rows, work / "again.ndjson", DIRECT_KEY)[0]
            out[f"{code} {slug}"] = (cold, warm, again)
            RECORDS[f"{code} {slug}"] = records
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tree",
        action="append",
        type=Path,
        help="a checkout's root, once per tree (the first is the baseline); default: this tree "
        "alone, as make bench runs it",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="the case, written above the tables")
    args = parser.parse_args()
    trees: list[Path] = [t.resolve() for t in args.tree or [ROOT]]
    commits = [
        subprocess.run(
            ["git", "-C", str(t), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for t in trees
    ]
    for tree in trees:
        build_kernels(tree)
    wanted = topics(trees[-1])
    work = work_dir("cold-start-")
    loads: list[float] = [os.getloadavg()[0]]
    # results[tree][topic] = [(cold, warm, re-derived) per round]
    results: list[dict[str, list[tuple[float, float, float]]]] = [{} for _ in trees]
    for r in range(args.rounds):
        for i, tree in enumerate(trees):
            got = one_round(tree, args.population, work, wanted)
            for name, pair in got.items():
                results[i].setdefault(name, []).append(pair)
            loads.append(os.getloadavg()[0])
            print(
                f"round {r + 1} {commits[i]}: "
                + ", ".join(f"{n.split()[1]} {c / w:.0%}" for n, (c, w, _) in got.items()),
                flush=True,
            )

    head = "| topic | records | " + " | ".join(
        f"{c} cold (median) | {c} warm | {c} cold ÷ warm per round | {c} ≥ 50 % every round"
        for c in commits
    )
    lines = [head + " |", "|---|---:|" + "---:|---:|---|---|" * len(trees)]
    again_lines = [
        "| topic | "
        + " | ".join(f"{c} re-derived (median) | {c} re-derived ÷ warm per round" for c in commits)
        + " |",
        "|---|" + "---:|---|" * len(trees),
    ]
    for code, slug, _ in wanted:
        name = f"{code} {slug}"
        cells = [name, f"{RECORDS[name]:,}"]
        again_cells = [name]
        for res in results:
            runs = res[name]
            ratios = [c / w for c, w, _ in runs]
            cells += [
                f"{statistics.median(c for c, _, _ in runs):,.0f}",
                f"{statistics.median(w for _, w, _ in runs):,.0f}",
                ", ".join(f"{x:.0%}" for x in ratios),
                "yes" if min(ratios) >= 0.5 else "**no**",
            ]
            again_cells += [
                f"{statistics.median(a for _, _, a in runs):,.0f}",
                ", ".join(f"{a / w:.0%}" for _, w, a in runs),
            ]
        lines.append("| " + " | ".join(cells) + " |")
        again_lines.append("| " + " | ".join(again_cells) + " |")
    met = [
        sum(min(c / w for c, w, _ in res[f"{c_} {s}"]) >= 0.5 for c_, s, _ in wanted)
        for res in results
    ]
    tally = ", ".join(f"{c} {m} of {len(wanted)}" for c, m in zip(commits, met, strict=True))
    report = f"""# Cold start of the departments, tree against tree

`bench/cold_start.py` on {platform.node()} ({os.cpu_count()} CPUs, Python
{platform.python_version()}), {time.strftime("%Y-%m-%d %H:%M")}; {args.rounds} rounds, trees
alternating each round ({", ".join(commits)}; the first is the baseline), each round a fresh
department process (population {args.population:,}, 2 export workers, the defaults; the
departments' injected errors off, their latency on), every
exportable topic exported whole by curl once cold and three times warm (warm: the median of
the three). Load average (1 min) at the start and after each tree's round:
{", ".join(f"{x:.2f}" for x in loads)}.
{args.note}

{chr(10).join(lines)}

Topics with cold ≥ 50 % of warm in every round: {tally}.

## Re-derived in a running process

After its warm reads, each topic's chunks dropped (its noise set and reset through the
fault control), as a long load test's chunk budget drops them, and the topic exported once
more: derived again, by workers and a server that have run a while. Not the target's case
(the first export from a fresh process, above); the case a load test meets when its city
outgrows the chunk cache.

{chr(10).join(again_lines)}
"""
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
