"""Resident memory and CPU time of a process and its descendants, read from ``/proc``.

``exchange load`` samples the exchange it started (``exchange up`` and, with workers, its
supervisor, worker processes and mock departments) at the start and the end of the day:
the issue's memory rule judges the whole exchange, and the CPU split shows whether the
run used both cores. Linux only; elsewhere :func:`sample` answers ``None`` (the run goes
on without the figures).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessFigures", "TreeFigures", "descendants", "sample"]

PROC = Path("/proc")
#: how much of a process's command line the figures keep
COMMAND_CHARS = 160
#: clock ticks per second, the unit of utime and stime in /proc/<pid>/stat
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """One process: its name (``comm``, 15 characters), RSS in bytes, CPU seconds, and
    the start of its command line (which says which part of the exchange it is)."""

    pid: int
    name: str
    rss_bytes: int
    cpu_s: float
    command: str = ""


@dataclass(frozen=True, slots=True)
class TreeFigures:
    """A process tree at one moment."""

    processes: tuple[ProcessFigures, ...]

    @property
    def rss_bytes(self) -> int:
        return sum(p.rss_bytes for p in self.processes)

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.processes)

    def as_json(self) -> dict[str, object]:
        return {
            "rss_mb": round(self.rss_bytes / 2**20, 1),
            "cpu_s": round(self.cpu_s, 1),
            "processes": [
                {
                    "pid": p.pid,
                    "name": p.name,
                    "rss_mb": round(p.rss_bytes / 2**20, 1),
                    "cpu_s": round(p.cpu_s, 1),
                    "command": p.command,
                }
                for p in self.processes
            ],
        }


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and every process below it, parents first (from each thread's
    ``children`` list, which needs no scan of every process on the machine)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop(0)
        out.append(current)
        try:
            tasks = list((proc / str(current) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
    return out


def _one(pid: int, proc: Path) -> ProcessFigures | None:
    try:
        status = (proc / str(pid) / "status").read_text()
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None  # ended meanwhile
    rss = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
            break
    # The command may hold spaces and parentheses: the fields follow the last ")".
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat[stat.rfind(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3 (state).
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    command = " ".join(a.decode(errors="replace") for a in argv if a)[:COMMAND_CHARS]
    return ProcessFigures(pid, name, rss, cpu, command)


def sample(pid: int, proc: Path = PROC) -> TreeFigures | None:
    """RSS and CPU of ``pid`` and its descendants now; ``None`` without ``/proc``."""
    if not (proc / str(pid)).is_dir():
        return None
    found = [f for f in (_one(p, proc) for p in descendants(pid, proc)) if f is not None]
    return TreeFigures(tuple(found)) if found else None
