"""Run every benchmark, one after the other, each rewriting its results file.

``make bench`` calls this. Each benchmark starts what it measures on loopback and stops it,
so they must not overlap (they would measure each other). The whole set takes a couple of
hours on a 2-core machine, most of it the 30-minute soak, the 5-minute load day and the
federation's city of a million people; ``--only NAME …`` runs some of them, ``--list``
shows them.

A benchmark that fails does not stop the others: the run ends with the list of failures
and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: bench/broker_trees.py's trees for where a lookup's CPU goes (bench/ablations/)
_ABLATIONS = (
    "broker_trees.py",
    *("--tree", "base=-"),
    *("--tree", "no-audit=bench/ablations/no-audit.patch"),
    *("--tree", "no-commit=bench/ablations/no-commit.patch"),
)

#: (name, script arguments, results file): every results file under bench/results/ that
#: a script writes (load-day.md comes from ``exchange load`` and is written by day_memory).
RUNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("catalog", ("catalog.py",), "catalog.md"),
    ("departments", ("departments.py",), "departments.md"),
    ("cold-start", ("cold_start.py",), "cold-start.md"),
    ("authz", ("authz.py",), "authz.md"),
    ("broker", ("broker.py", "--workload", "single"), "broker.md"),
    ("broker-spread", ("broker.py", "--workload", "spread"), "broker-spread.md"),
    ("broker-floor", ("broker_floor.py",), "broker-floor-spread.md"),
    ("broker-trees", (*_ABLATIONS, "--out", "broker-trees-spread.md"), "broker-trees-spread.md"),
    (
        "broker-trees-paced",
        (
            *_ABLATIONS,
            *("--tree", "entry-only=bench/ablations/entry-only.patch"),
            *("--tree", "journal-only=bench/ablations/journal-only.patch"),
            *("--tree", "no-canonical=bench/ablations/no-canonical.patch"),
            *("--rate", "7000", "--out", "broker-trees-spread-paced.md"),
        ),
        "broker-trees-spread-paced.md",
    ),
    (
        "broker-postgres-single",
        ("broker.py", "--database", "both", "--workload", "single"),
        "broker-postgres-single.md",
    ),
    (
        "broker-postgres-spread",
        ("broker.py", "--database", "both", "--workload", "spread"),
        "broker-postgres-spread.md",
    ),
    ("scaling", ("scaling.py",), "scaling.md"),
    ("freshness", ("freshness.py",), "freshness.md"),
    ("verify", ("verify.py",), "verify.md"),
    ("distribution", ("distribution.py",), "distribution.md"),
    ("city-changes", ("city_changes.py",), "city-changes.md"),
    ("credit", ("credit.py",), "credit.md"),
    ("licences", ("licences.py",), "licences.md"),
    ("libraries", ("libraries.py",), "libraries.md"),
    (
        "libraries-big",
        ("libraries.py", "--population", "0", "--big", "1000000"),
        "libraries-big.md",
    ),
    ("federation-lookups", ("federation.py", "--only", "lookups"), "federation-lookups.md"),
    (
        "federation-provision",
        ("federation.py", "--only", "provision"),
        "federation-provision.md",
    ),
    ("soak", ("soak.py",), "soak.md"),
    ("day-memory", ("day_memory.py",), "day-memory.md"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    args = parser.parse_args()
    names = [name for name, _, _ in RUNS]
    if args.list:
        for name, argv, results in RUNS:
            print(f"{name:24} bench/{' '.join(argv):52} bench/results/{results}")
        return 0
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(names)}")
    chosen = [run for run in RUNS if not args.only or run[0] in args.only]
    failed: list[str] = []
    started = time.monotonic()
    for n, (name, argv, results) in enumerate(chosen, 1):
        print(f"\n[{n}/{len(chosen)}] {name}: bench/{' '.join(argv)}", flush=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, str(BENCH / argv[0]), *argv[1:]])
        took = time.monotonic() - t0
        if code == 0:
            print(f"[{n}/{len(chosen)}] {name}: done in {took:.0f} s → bench/results/{results}")
        else:
            print(f"[{n}/{len(chosen)}] {name}: FAILED (exit {code}) after {took:.0f} s")
            failed.append(name)
    print(
        f"\n{len(chosen) - len(failed)} of {len(chosen)} benchmarks done in "
        f"{(time.monotonic() - started) / 60:.0f} min"
    )
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
