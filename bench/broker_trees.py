"""The broker of several source trees side by side: one change's effect on the exchange's CPU
per lookup, measured in one run, or where that CPU goes (each tree with one step taken out).

Each ``--tree NAME=PATCH`` is this checkout's committed ``HEAD`` in a worktree of its own,
with the patch applied (``-`` for none: the baseline); ``--tree NAME=DIR`` runs the ``src/``
of a checkout that is already there. Every tree's exchange (one process, SQLite) stands in
front of the same mock departments process, seeded and granted alike; wrk (1 thread, 64
connections) runs each exchange in turn in every round, rotating which goes first, so the
machine's load falls on all of them alike; the department called directly takes its turn
too, the baseline of the issue's ratio (the exchange's CPU per lookup against the
department's per direct lookup). The figures are medians of the rounds.

Two conditions, and they differ (bench/README.md, "broker", 2026-12-04 (late)):

* as fast as the connections go (the default, bench/broker.py's condition): a tree that
  spends less per lookup also serves more lookups per turn of its event loop, and each
  then costs less again;
* ``--rate N``: every tree paced to the same N lookups per second, so a step's own cost is
  read without that second effect.

    .venv/bin/python bench/broker_trees.py --tree base=- \\
        --tree no-audit=bench/ablations/no-audit.patch [--rate 8000] [--rounds 4] [--out F]

Results: printed, and written to ``bench/results/NAME`` with ``--out NAME`` (bench/all.py's
runs: ``broker-trees-spread.md``, ``broker-trees-spread-paced.md``). The worktrees are
removed at the end. A patch's path is read from this checkout's root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import setting, work_dir
from _stack import Stack, departments, exchanges, lua, single_workload, spread_workload

from broker import thread_cpu, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: the department called directly (the baseline's row)
DIRECT = "direct"


@contextmanager
def sources(trees: dict[str, str]) -> Iterator[dict[str, Path]]:
    """Each tree's ``src/``: a checkout given, or a worktree of ``HEAD`` with its patch."""
    made: list[Path] = []
    base = Path(tempfile.mkdtemp(prefix="broker-trees-"))
    try:
        found: dict[str, Path] = {}
        for name, what in trees.items():
            given = Path(what)
            if given.is_dir():
                found[name] = given.resolve() / "src"
                continue
            tree = base / name
            add = ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), "HEAD"]
            subprocess.run(add, check=True)
            made.append(tree)
            if what != "-":
                patch = (given if given.exists() else ROOT / what).resolve()
                subprocess.run(["git", "-C", str(tree), "apply", str(patch)], check=True)
            found[name] = tree / "src"
        yield found
    finally:
        for tree in made:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree",
        action="append",
        required=True,
        metavar="NAME=PATCH|DIR",
        help="a tree: HEAD with a patch (- for none), or a checkout's root; once per tree",
    )
    parser.add_argument("--workload", choices=("spread", "single"), default="spread")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=None, help="pace every tree to N req/s")
    parser.add_argument(
        "--out",
        default=None,
        metavar="NAME",
        help="also write the report to bench/results/NAME (this tree's)",
    )
    args = parser.parse_args()
    trees: dict[str, str] = {}
    for spec in args.tree:
        name, sep, what = spec.partition("=")
        if not sep or not name or not what:
            parser.error(f"--tree NAME=PATCH|DIR, not {spec!r}")
        trees[name] = what
    # Stopped (SIGTERM), it still removes its worktrees: the `finally` blocks run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    work = work_dir("broker-trees-")
    names = list(trees)
    # The department called directly, in the same rotation: the ratio is the
    # exchange's CPU per lookup against the department's per direct lookup.
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*names, DIRECT]}
    with sources(trees) as src, departments() as (dept_url, dept):
        homes: dict[str, tuple[Path, str | None]] = {name: (work / name, None) for name in names}
        with exchanges(dept_url, homes, sources=src) as started:
            scripts = {}
            for name, (url, proc) in started.items():
                st = Stack(dept_url, url, dept, proc)
                workload = (spread_workload if args.workload == "spread" else single_workload)(st)
                script = work / f"{name}.lua"
                script.write_text(lua(workload, direct=False, rate=args.rate))
                scripts[name] = script
                wrk(url, script, 2, 64, {})  # warm: routes, grants, connections
            direct = work / "direct.lua"
            direct.write_text(lua(workload, direct=True, rate=args.rate))
            wrk(dept_url, direct, 2, 64, {})
            turn = [*names, DIRECT]
            for r in range(args.rounds):
                for name in turn[r % len(turn) :] + turn[: r % len(turn)]:
                    if name == DIRECT:
                        out = wrk(dept_url, direct, args.seconds, 64, {"department": [dept.pid]})
                        runs[DIRECT].append(out)
                        print(
                            f"round {r + 1} {DIRECT:12} {out['rps']:8,.0f} req/s, CPU µs per "
                            f"lookup: department {out['cpu_department']:.1f}; non-2xx "
                            f"{out['non2xx']:.0f}",
                            flush=True,
                        )
                        continue
                    url, proc = started[name]
                    before = thread_cpu(proc.pid)
                    out = wrk(
                        url,
                        scripts[name],
                        args.seconds,
                        64,
                        {"exchange": [proc.pid], "department": [dept.pid]},
                    )
                    after = thread_cpu(proc.pid)
                    # The main thread is the event loop's; the rest are the audit writer's
                    # and the usage flush's.
                    loop = after.get(proc.pid, 0.0) - before.get(proc.pid, 0.0)
                    out["cpu_loop"] = loop / out["requests"] * 1e6
                    runs[name].append(out)
                    print(
                        f"round {r + 1} {name:12} {out['rps']:8,.0f} req/s, CPU µs per lookup: "
                        f"exchange {out['cpu_exchange']:.1f} (loop {out['cpu_loop']:.1f}), "
                        f"department {out['cpu_department']:.1f}; non-2xx {out['non2xx']:.0f}",
                        flush=True,
                    )
    text = report(args, trees, runs, load_before)
    print(text)
    broken = failures(runs)
    if broken:
        # A tree that failed calls measured a broken exchange, not a step's cost (an
        # ablation patch whose exchange no longer serves, say): no results file.
        for line in broken:
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1)
    if args.out is not None:
        (RESULTS / Path(args.out).name).write_text(text)


def failures(runs: dict[str, list[dict[str, float]]]) -> list[str]:
    """What went wrong on each path: rounds that served nothing, answers other than 2xx,
    socket errors (a timeout is one)."""
    found = []
    for name, rounds in runs.items():
        idle = sum(1 for r in rounds if r["rps"] < 1)
        non2xx = sum(r["non2xx"] for r in rounds)
        errors = sum(r.get("errors", 0.0) for r in rounds)
        if idle or non2xx or errors:
            found.append(
                f"{name}: {idle} of {len(rounds)} rounds served nothing, {non2xx:,.0f} non-2xx "
                f"answers, {errors:,.0f} socket errors"
            )
    return found


def report(
    args: argparse.Namespace,
    trees: dict[str, str],
    runs: dict[str, list[dict[str, float]]],
    load_before: tuple[float, float, float],
) -> str:
    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    first = next(iter(trees))
    pace = f"paced to {args.rate:,.0f} req/s" if args.rate else "as fast as the connections go"
    direct = med(DIRECT, "cpu_department")
    rows = [
        "| tree | what it runs | req/s | CPU µs per lookup, exchange | of which its event "
        "loop's thread | − the first tree's | ÷ the department's per direct lookup | "
        "department's CPU µs per lookup through it | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {DIRECT} | the department called directly | {med(DIRECT, 'rps'):,.0f} | "
        f"– | – | – | – | {direct:.1f} | {sum(r['non2xx'] for r in runs[DIRECT]):.0f} |",
    ]
    for name, what in trees.items():
        runs_of = "HEAD" if what == "-" else f"HEAD + `{what}`" if not Path(what).is_dir() else what
        exchange = med(name, "cpu_exchange")
        delta = exchange - med(first, "cpu_exchange")
        rows.append(
            f"| {name} | {runs_of} | {med(name, 'rps'):,.0f} | {exchange:.1f} | "
            f"{med(name, 'cpu_loop'):.1f} | {delta:+.1f} | {exchange / direct:.2f} | "
            f"{med(name, 'cpu_department'):.1f} | {sum(r['non2xx'] for r in runs[name]):.0f} |"
        )
    per_round = "; ".join(
        f"{name} " + ", ".join(f"{r['cpu_exchange']:.1f}" for r in runs[name]) for name in trees
    )
    return f"""# The broker of several trees side by side ({args.workload} workload, {pace})

{setting(load_before)}

Each tree's exchange (one process, SQLite, warm) in front of the same departments process,
and that department called directly; wrk 1 thread, 64 connections, {args.rounds} rounds of
{args.seconds} s, the trees and the direct path in turn in each round (rotating which goes
first); medians of the rounds.

{chr(10).join(rows)}

Per round, exchange CPU µs per lookup: {per_round}

How to read it: `bench/README.md`, section "broker" (2026-12-04 (late)).
"""


if __name__ == "__main__":
    main()
