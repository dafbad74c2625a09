"""Run benchmarks on a reference tree and on this one, interleaved, and compare their figures.

The committed results files are one run each, on a shared and noisy machine: a figure
measured today cannot be read against one committed yesterday. This script measures both
in the same run. For each chosen benchmark it checks out two trees (``git worktree``,
detached, under a temporary directory): the **reference** (by default the commit that
last wrote the benchmark's results file, i.e. the tree behind its committed figures; or
``--ref REV``) and the **current** tree (``HEAD``, committed state). It then runs the
benchmark's script of each tree in turn, ``--pairs`` times, alternating which goes first,
each with ``PYTHONPATH`` set to its own ``src/`` and writing the results file of its own
checkout (this checkout's results files are left alone). Every numeric cell of the
results tables present in both trees' output is compared: median of the current runs ÷
median of the reference runs. Cells that never differ (record counts, sizes) are left
out. Each benchmark's comparison is written, as soon as it ends, to
``bench/results/compare/NAME.md`` (rewritten whole; the other benchmarks' files are left as
they are, each saying when and under which load it ran); a cell more than ``--tolerance``
away is flagged (up or down: for a rate higher is better, for a latency lower is, and the
script does not guess which a column is).

Usage: ``python bench/compare.py --only broker departments --pairs 2``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT_DIR = BENCH / "results" / "compare"

#: A number in a cell: digits with thousands commas, an optional fraction.
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
#: A figure's cell: numbers, each with an optional unit word (``ms``, ``MB``, ``events/s``,
#: ``records/s``), between separators and signs (``4,019 events/s = 16,078 deliveries/s``).
#: A label starts with a word (``push end to end, 1 subscription``) and so never matches.
VALUE = re.compile(
    r"(?:[\s,.+\-–−×%/÷≈~()=]*\d[\d,]*(?:\.\d+)?\s*(?:[a-zA-Zµ×%]+(?:/s)?)?)+[\s,.()%]*"
)


def load_runs() -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """The benchmark list of ``bench/all.py`` (one list, kept there)."""
    spec = importlib.util.spec_from_file_location("bench_all", BENCH / "all.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs: tuple[tuple[str, tuple[str, ...], str], ...] = module.RUNS
    return runs


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


#: A figure followed by its verdict or a note in parentheses: ``118% (target ≥ 80 %: met)``.
NOTED = re.compile(r"(?P<figure>.*?)\s*\(.*\)\s*")


def _figure(text: str, column: int) -> str | None:
    """The figure a cell holds, or None for a label. Past the first column (which names the
    row) a figure may carry a note in parentheses: the note is not part of the row's name,
    else a verdict that changes between runs ("met", "not met") would make two rows of it."""
    if _is_value(text):
        return text
    noted = NOTED.fullmatch(text) if column > 0 else None
    if noted and _is_value(noted["figure"]):
        return noted["figure"]
    return None


def _is_value(text: str) -> bool:
    """A cell holding a figure (``1,063,304``, ``0.41 ms``, ``24%``, rounds ``7, 9, 4``),
    not a label (``platform-2020 (3722)``, ``in_process``, ``**yes**``)."""
    return bool(VALUE.fullmatch(text)) and any(c.isdigit() for c in text)


def cells(markdown: str) -> Iterator[tuple[str, float]]:
    """Every figure of every table, keyed by heading, row and column.

    A row is named by its label cells (every cell that is not a figure: a table may name a
    row by its catalog *and* its path), a figure by its column's header, so a table whose
    rows or columns moved between the two trees still matches cell by cell; a cell holding
    several numbers (the rounds) gives its first.
    """
    heading = ""
    header: list[str] | None = None
    seen: dict[str, int] = {}
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            header = None
            seen = {}
            continue
        if not line.startswith("|"):
            header = None
            continue
        row = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
        if header is None:
            header = row
            continue
        if all(set(c) <= set("-: ") for c in row):
            continue
        figures = [_figure(c, i) for i, c in enumerate(row)]
        # A row is named by its first cell and the later cells that hold no number: a
        # later cell mixing words and numbers is a run's detail ("rounds: 158,892,
        # 160,288"), which would give the row another name in every run.
        label = " / ".join(
            c
            for i, (c, f) in enumerate(zip(row, figures, strict=True))
            if c and f is None and (i == 0 or not any(ch.isdigit() for ch in c))
        )
        label = label or row[0]
        # Rows named alike (the same database with 1 and then 2 processes, the number being
        # a figure) are told apart by their order, which both trees' tables share.
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        for column, figure in zip(header, figures, strict=False):
            found = NUMBER.search(figure) if figure is not None else None
            if found:
                yield f"{heading} › {label} › {column}", float(found.group().replace(",", ""))


@dataclass
class Side:
    tree: Path
    commit: str
    runs: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def run_once(side: Side, argv: tuple[str, ...], results: str, extra: list[str]) -> bool:
    env = dict(os.environ, PYTHONPATH=str(side.tree / "src"))
    out = side.tree / "bench" / "results" / results
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    code = subprocess.call(
        [sys.executable, str(side.tree / "bench" / argv[0]), *argv[1:], *extra],
        cwd=side.tree,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    side.seconds.append(time.monotonic() - t0)
    if code != 0 or not out.exists():
        print(f"  {side.commit[:9]}: FAILED (exit {code})", flush=True)
        return False
    side.runs.append(dict(cells(out.read_text())))
    return True


def checkout(base: Path, commit: str, trees: dict[str, Path]) -> Path:
    if commit not in trees:
        tree = base / commit[:12]
        git("worktree", "add", "--detach", "-q", str(tree), commit)
        trees[commit] = tree
    return trees[commit]


@dataclass
class Compared:
    name: str
    ref: Side
    cur: Side
    rows: list[tuple[str, float, float, float]]
    #: When the benchmark's comparison started, and the load average before and after it.
    started: str = ""
    load: tuple[str, str] = ("", "")


def compare(ref: Side, cur: Side) -> list[tuple[str, float, float, float]]:
    keys = set.intersection(*(set(r) for r in ref.runs + cur.runs)) if ref.runs else set()
    rows = []
    for key in sorted(keys):
        ref_values = [r[key] for r in ref.runs]
        cur_values = [r[key] for r in cur.runs]
        if len(set(ref_values + cur_values)) == 1:
            continue  # a constant (a count, a size): not a measurement
        ref_median = statistics.median(ref_values)
        cur_median = statistics.median(cur_values)
        if ref_median == 0:
            continue
        rows.append((key, ref_median, cur_median, cur_median / ref_median))
    return rows


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(c: Compared, args: argparse.Namespace) -> str:
    """One benchmark's comparison, as its own results file."""
    within = sum(1 for *_, r in c.rows if abs(r - 1) <= args.tolerance)
    ratio = statistics.median(r for *_, r in c.rows) if c.rows else float("nan")
    lines = [
        f"# {c.name}: against the tree behind its committed figures",
        "",
        f"Machine: {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}),"
        f" {c.started}. `bench/compare.py` ran the benchmark's script of the reference tree"
        f" and of the current tree in turn, {args.pairs} pair(s), alternating which went"
        " first; each figure is the median of its runs, and the ratio is current ÷ reference."
        f" Load average (1, 5, 15 min) before: {c.load[0]}; after: {c.load[1]}. Only cells"
        " that moved between runs are listed.",
        f"Cells more than {args.tolerance:.0%} away are marked (**↑** / **↓**): higher is"
        " better for rates, lower for latencies and CPU per call.",
        "",
        "| reference | current | runs (ref/cur) | cells | within "
        f"{args.tolerance:.0%} | median ratio |",
        "|---|---|---|---:|---:|---:|",
        f"| `{c.ref.commit[:9]}` | `{c.cur.commit[:9]}` | {len(c.ref.runs)}/{len(c.cur.runs)} |"
        f" {len(c.rows)} | {within} | {ratio:.3f} |",
        "",
        "| figure | reference | current | ratio |",
        "|---|---:|---:|---:|",
    ]
    for key, ref_value, cur_value, row_ratio in c.rows:
        off = abs(row_ratio - 1) > args.tolerance
        mark = (" **↑**" if row_ratio > 1 else " **↓**") if off else ""
        lines.append(f"| {key} | {ref_value:,.6g} | {cur_value:,.6g} | {row_ratio:.3f}{mark} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    runs = load_runs()
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        required=True,
        help=f"benchmarks to compare: {', '.join(n for n, _, _ in runs)}",
    )
    parser.add_argument(
        "--ref", help="reference revision (default: each results file's last commit)"
    )
    parser.add_argument("--pairs", type=int, default=2, help="runs of each tree (default 2)")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--args", default="", help="extra arguments for every script, one string")
    parser.add_argument(
        "--no-write", action="store_true", help=f"print, don't write {OUT_DIR.name}/NAME.md"
    )
    args = parser.parse_args()
    chosen = [r for r in runs if r[0] in args.only]
    unknown = set(args.only) - {r[0] for r in runs}
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    head = git("rev-parse", "HEAD")
    base = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    trees: dict[str, Path] = {}
    done: list[Compared] = []
    failures: list[str] = []
    try:
        compare_all(chosen, args, base, head, trees, done, failures)
    except KeyboardInterrupt:
        # A comparison runs for hours: Ctrl-C keeps what finished (already written).
        print(f"interrupted: {len(done)} benchmark(s) finished and written", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=ROOT,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)
    if failures:
        print(f"no comparison for: {', '.join(failures)}", flush=True)
    return 1 if failures or not done else 0


def compare_all(
    chosen: list[tuple[str, tuple[str, ...], str]],
    args: argparse.Namespace,
    base: Path,
    head: str,
    trees: dict[str, Path],
    done: list[Compared],
    failures: list[str],
) -> None:
    """Run every chosen benchmark on both trees, appending each to ``done`` as it ends."""
    for name, argv, results in chosen:
        ref_commit = (
            git("rev-parse", args.ref)
            if args.ref
            else git("log", "-1", "--format=%H", "--", f"bench/results/{results}")
        )
        ref = Side(checkout(base, ref_commit, trees), ref_commit)
        cur = Side(checkout(base, head, trees), head)
        print(f"{name}: reference {ref_commit[:9]}, current {head[:9]}", flush=True)
        started, load_before = time.strftime("%Y-%m-%d %H:%M"), _loadavg()
        for n in range(args.pairs):
            for side in (ref, cur) if n % 2 == 0 else (cur, ref):
                label = "reference" if side is ref else "current"
                print(f"  pair {n + 1}/{args.pairs}: {label} …", flush=True)
                run_once(side, argv, results, args.args.split())
        if not ref.runs or not cur.runs:
            # Nothing to compare: a file of empty ratios would read as a comparison made.
            failed = "reference" if not ref.runs else "current"
            print(f"  {name}: every {failed} run failed; nothing written", flush=True)
            failures.append(name)
            continue
        c = Compared(name, ref, cur, compare(ref, cur), started, (load_before, _loadavg()))
        done.append(c)
        # Written at once: a comparison of several benchmarks runs for hours, and what
        # finished must survive an interrupt or a later benchmark's failure.
        text = report(c, args)
        if args.no_write:
            print(text)
        else:
            OUT_DIR.mkdir(exist_ok=True)
            out = OUT_DIR / f"{name}.md"
            out.write_text(text)
            print(f"  wrote {out.relative_to(ROOT)}", flush=True)
        if c.rows:
            within = sum(1 for *_, r in c.rows if abs(r - 1) <= args.tolerance)
            ratio = statistics.median(r for *_, r in c.rows)
            print(
                f"  {len(c.rows)} cells, {within} within {args.tolerance:.0%},"
                f" median ratio {ratio:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
