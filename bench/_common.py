"""What the benchmark scripts share: a free loopback port, waiting for a server, reading a
figure out of a tool's report, a work folder that goes when the run went well, the line
that says where and when a run was made."""

from __future__ import annotations

import atexit
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from exchange.children import end_with_parent

#: set when the script fails (an uncaught exception, or a failure point below), so that
#: the work folders, which hold the servers' logs and databases, stay for a look
_failed = False


def _note_failure(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    global _failed
    _failed = True
    sys.__excepthook__(kind, value, tb)


def _fail(message: str) -> SystemExit:
    global _failed
    _failed = True
    return SystemExit(message)


def work_dir(prefix: str) -> Path:
    """A fresh folder for a run's databases and logs, removed when the script ends well
    (a benchmark's databases reach hundreds of MB, and runs are many) and kept, with its
    path printed, when it fails or ``EXCHANGE_BENCH_KEEP=1``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    sys.excepthook = _note_failure

    def tidy() -> None:
        if _failed or os.environ.get("EXCHANGE_BENCH_KEEP") == "1":
            print(f"work folder kept (databases, servers' logs): {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(tidy)
    return path


def commit() -> str:
    """The short commit of the tree this script belongs to, ``+changes`` when its files
    differ from it; ``unknown`` outside a git checkout (an unpacked release, the image)."""
    tree = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def setting(load_before: tuple[float, float, float]) -> str:
    """Where, when and on what a run was made, for the top of its results file: the
    machine, the date, the commit, the command and the load average before and now (a
    shared 2-core machine: the load says how far the absolute figures can be trusted)."""
    after = os.getloadavg()
    command = " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    return (
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}; commit {commit()}. "
        f"Command: `{command}`. Load average (1, 5, 15 min) "
        f"{' / '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{' / '.join(f'{x:.1f}' for x in after)} after."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Return once ``url`` answers; exit the script if the server dies or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise _fail(f"server behind {url} did not start") from None
            time.sleep(0.1)


def figure(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern`` in a tool's report (wrk's, /proc's); exit the script
    when the report lacks it."""
    found = re.search(pattern, text, flags)
    if found is None:
        raise _fail(f"no {pattern!r} in the report:\n{text[-2000:]}")
    return found.group(1)


def curl_seconds(args: list[str], max_seconds: int = 900) -> float:
    """Wall time of one curl run (``curl -sf --max-time`` and ``args``), from its start to
    its exit, which must be 0.

    Timed with a blocking wait: ``subprocess.run(timeout=...)`` polls the child with sleeps
    that double from 0.5 ms to 50 ms, so a curl that ended at 17 ms was seen at 31.5 ms and
    one that ended at 33 ms at 63.5 ms (every export rate measured that way before
    2026-12-04 came out in steps of ~32 ms). The bound is curl's own ``--max-time``."""
    started = time.perf_counter()
    done = subprocess.run(["curl", "-sf", "--max-time", str(max_seconds), *args], check=False)
    spent = time.perf_counter() - started
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["curl", *args])
    return spent


def curl_export(base: str, topic: str, rows: int, out: Path, key: str) -> tuple[float, int]:
    """(records/s, records) of one whole export of ``topic`` (its path under ``base``) read
    by curl into ``out`` with the bearer ``key``: the wall time of the curl process, so the
    reader costs what a user's client costs."""
    spent = curl_seconds(
        ["-o", str(out), "-H", f"Authorization: Bearer {key}", f"{base}{topic}/export?limit={rows}"]
    )
    records = out.read_bytes().count(b"\n")
    return records / spent, records


def start_departments(
    port: int,
    population: int,
    operator_key: str,
    direct_key: str,
    src: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The mock departments alone on 127.0.0.1:``port`` (``exchange serve departments``'s
    server), from another tree's ``src`` when given, its output appended to ``log``."""
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": operator_key,
        "EXCHANGE_DEPARTMENTS_DIRECT_KEY": direct_key,
        "EXCHANGE_POPULATION": str(population),
        "EXCHANGE_LOG_LEVEL": "warning",
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)
    code = (
        "from exchange.config import Settings\n"
        "from exchange.departments.cli import serve_departments\n"
        f"serve_departments(Settings(), '127.0.0.1', {port})\n"
    )
    ends = end_with_parent()
    if log is None:
        return subprocess.Popen([sys.executable, "-c", code], env=env, preexec_fn=ends)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=out, stderr=out, preexec_fn=ends
        )
