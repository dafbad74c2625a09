"""The broker beside a bare Python hop on its own serving stack: how much of a lookup's CPU
is the stack (server, provider client, event loop, sockets) and how much the pipeline.

One invocation, all on loopback: the mock departments, the exchange (one process, SQLite)
and two bare hops (``bench/_pyhop.py``: the exchange's server and provider client, no key,
grant, filtering, audit or metrics), in front of the same department process:

* ``hop``: each lookup forwarded as it came, with the direct-access key;
* ``shared``: each lookup through the broker's own batcher and signed client, sharing
  provider calls as the broker does, and answered as the broker answers.

wrk (1 thread, 64 connections) runs direct, broker and both hops back to back in each round,
rotating which goes first; the figures are medians of the rounds. Each path's CPU per
lookup is its process's user + system time over the run divided by the lookups served,
read against the department's CPU per direct lookup (the issue's ratio).

    .venv/bin/python bench/broker_floor.py [--workload spread|single] [--rounds 5] [--seconds 5]

Results: printed, and written to ``bench/results/broker-floor-WORKLOAD.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import free_port, setting, wait_up, work_dir
from _stack import (
    DIRECT_KEY,
    SECRET,
    Workload,
    lua,
    single_workload,
    spread_workload,
    stack,
)

from broker import wrk
from exchange.children import end_with_parent

RESULTS = Path(__file__).resolve().parent / "results"
HOPS = ("hop", "shared")
PATHS = ("direct", "broker", *HOPS)
LABEL = {
    "direct": "direct to department",
    "broker": "through the broker (1 process)",
    "hop": "bare Python hop, forwarding",
    "shared": "bare Python hop, shared signed calls",
}


def routes(dept_url: str, workload: Workload) -> dict[str, list[str | None]]:
    """Each target's broker path → [provider, the department's URL for it, key item]."""
    return {
        t.broker_path: [t.provider, dept_url + t.direct_path, t.key_item] for t in workload.targets
    }


@contextmanager
def hops(route_file: Path) -> Iterator[dict[str, tuple[str, int]]]:
    """Both hops serving (mode → (URL, pid)); stopped afterwards."""
    started: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        for mode in HOPS:
            port = free_port()
            proc = subprocess.Popen(
                [
                    *(sys.executable, str(Path(__file__).with_name("_pyhop.py"))),
                    *(str(port), str(route_file), mode, DIRECT_KEY, SECRET),
                ],
                preexec_fn=end_with_parent(),
            )
            started[mode] = (f"http://127.0.0.1:{port}", proc)
        for url, proc in started.values():
            wait_up(f"{url}/", proc, timeout=30)
        yield {mode: (url, proc.pid) for mode, (url, proc) in started.items()}
    finally:
        for _, proc in started.values():
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("spread", "single"), default="spread")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    work = work_dir("broker-floor-")
    runs: dict[str, list[dict[str, float]]] = {path: [] for path in PATHS}
    with stack(work) as st:
        make = spread_workload if args.workload == "spread" else single_workload
        workload = make(st)
        route_file = work / "routes.json"
        route_file.write_text(json.dumps(routes(st.dept_url, workload)))
        direct_script, broker_script = work / "direct.lua", work / "broker.lua"
        direct_script.write_text(lua(workload, direct=True))
        broker_script.write_text(lua(workload, direct=False))
        with hops(route_file) as started:
            bases = {
                "direct": (st.dept_url, direct_script, []),
                "broker": (st.ex_url, broker_script, [st.exchange.pid]),
                **{m: (url, broker_script, [pid]) for m, (url, pid) in started.items()},
            }
            for url, script, _ in bases.values():  # warm: routes, grants, connections
                wrk(url, script, 2, 64, {})
            for r in range(args.rounds):
                order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]
                for path in order:
                    url, script, pids = bases[path]
                    out = wrk(
                        url,
                        script,
                        args.seconds,
                        64,
                        {"department": [st.department.pid], "process": pids},
                    )
                    runs[path].append(out)
                    print(
                        f"round {r + 1} {path:7} {out['rps']:8,.0f} req/s, non-2xx "
                        f"{out['non2xx']:.0f}; CPU µs per lookup: department "
                        f"{out['cpu_department']:.1f}, its process {out['cpu_process']:.1f}",
                        flush=True,
                    )
    text = report(args, workload, runs, load_before)
    print(text)
    (RESULTS / f"broker-floor-{args.workload}.md").write_text(text)


def report(
    args: argparse.Namespace,
    workload: Workload,
    runs: dict[str, list[dict[str, float]]],
    load_before: tuple[float, float, float],
) -> str:
    def med(path: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[path])

    department = med("direct", "cpu_department")
    non2xx = sum(r["non2xx"] + r["errors"] for rs in runs.values() for r in rs)
    lines = [
        f"# The broker beside a bare Python hop: {workload.name} workload",
        "",
        setting(load_before),
        "",
        f"Workload **{workload.name}** (warm; `bench/_stack.py`): {len(workload.targets)} "
        f"topic(s) of {len(workload.providers)} provider(s), {len(workload.consumers)} "
        "consumer(s). wrk, 1 thread, 64 connections; medians of "
        f"{args.rounds} rounds of {args.seconds} s, the paths back to back in each round "
        "(rotating which goes first). The exchange is one process on SQLite, as "
        "`exchange up` serves; the hops (`bench/_pyhop.py`) are one process each on the "
        "exchange's own server and provider client, with no key, grant, filtering, audit "
        "or metrics. The department is one process on every path.",
        "",
        "| path | req/s | direct ÷ path | CPU µs per lookup in the path's process | ÷ the "
        "department's per direct lookup | CPU µs per lookup in the department |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    direct_rps = med("direct", "rps")
    for path in PATHS:
        own = med(path, "cpu_process")
        cells = [
            LABEL[path],
            f"{med(path, 'rps'):,.0f}",
            "" if path == "direct" else f"{direct_rps / med(path, 'rps'):.2f}",
            "" if path == "direct" else f"{own:.1f}",
            "" if path == "direct" else f"{own / department:.2f}",
            f"{med(path, 'cpu_department'):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Non-2xx answers and socket errors, all paths and rounds: {non2xx:.0f}.",
        "",
        "Per round, req/s: "
        + "; ".join(
            ", ".join(f"{path} {runs[path][r]['rps']:,.0f}" for path in PATHS)
            for r in range(args.rounds)
        ),
        "",
        "How to read it: the hops run the stack the broker runs; what the broker spends "
        "beyond the `shared` hop is its pipeline (key, grant, quota, filtering, the audit "
        "entry, its journal line and group commit, metrics). `bench/README.md`, section "
        '"broker".',
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
