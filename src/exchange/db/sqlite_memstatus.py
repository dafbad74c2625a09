"""SQLite's memory statistics off, so that threads using SQLite run side by side.

SQLite counts every allocation in global statistics unless told not to
(``SQLITE_CONFIG_MEMSTATUS``, on in the library Python's ``sqlite3`` module links to: its
compile-time default). The count takes one process-wide mutex on every ``malloc`` and
``free``, and SQLite allocates on nearly every row it parses, sorts or builds: two threads
running statements at once (the libraries' page staging beside a page write, the quality
check's two scans, the audit writer beside a lookup's read) then take turns on that mutex
instead of using both cores. Measured on the 2-core machine (SQLite 3.40.1, statements
that release the GIL): a recursive CTE alone 641 ms with statistics, 521 ms without; two
at once in two threads 1,603-1,717 ms with, 520-524 ms without; a 100,000-record library
page staged in two threads at once 740-851 ms with, 410-552 ms without.

SQLite's own advice is to build it with the statistics off (``SQLITE_DEFAULT_MEMSTATUS=0``,
"helps the sqlite3_malloc() routines run much faster"). Python's module does not expose
``sqlite3_config``, so it is called here through ctypes, on the very library the module
is linked to. ``sqlite3_config`` works only while SQLite is not initialised, and the
module initialises it on import: SQLite is shut down first, which is safe only while it
holds nothing at all. It is done only when ``sqlite3_memory_used()`` reports 0 bytes (no
connection, statement or cache of anybody's is open in the process) and once per process;
otherwise SQLite is left as it is. What is lost: ``sqlite3_memory_used()``,
``sqlite3_status()`` and the heap limits, none of which the exchange reads or sets.
``EXCHANGE_SQLITE_MEMSTATUS=1`` keeps the statistics (for a comparison).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

__all__ = ["disable_memory_statistics", "memory_statistics_off"]

log = logging.getLogger(__name__)

#: sqlite3_config's verb (sqlite3.h: SQLITE_CONFIG_MEMSTATUS)
_CONFIG_MEMSTATUS = 9
_SQLITE_OK = 0

_lock = threading.Lock()
#: None: not tried yet in this process; then whether the statistics are off
_off: bool | None = None


def memory_statistics_off() -> bool:
    """Whether this process turned SQLite's memory statistics off."""
    return bool(_off)


def disable_memory_statistics() -> bool:
    """Turn SQLite's memory statistics off for this process if SQLite holds nothing yet
    (see the module's docstring); whether they are off. Called before a database's first
    connection; later calls answer what the first did."""
    global _off
    with _lock:
        if _off is None:
            _off = _disable() if os.environ.get("EXCHANGE_SQLITE_MEMSTATUS") != "1" else False
        return _off


def _disable() -> bool:
    try:
        import _sqlite3

        # The extension's own handle: dlsym through it finds the SQLite it is linked to
        # (or carries), never another copy on the machine.
        lib = ctypes.CDLL(_sqlite3.__file__)
        used = lib.sqlite3_memory_used
        used.restype = ctypes.c_int64
        config = lib.sqlite3_config
        config.argtypes = [ctypes.c_int, ctypes.c_int]
        config.restype = ctypes.c_int
    except (ImportError, OSError, AttributeError) as exc:
        log.debug("SQLite's memory statistics left on: %s", exc)
        return False
    if used() != 0:
        # Something in this process holds SQLite memory (an open connection): shutting
        # SQLite down under it is undefined, so the statistics stay on.
        log.debug("SQLite's memory statistics left on: SQLite is in use already")
        return False
    if lib.sqlite3_shutdown() != _SQLITE_OK:
        return False
    done = bool(config(_CONFIG_MEMSTATUS, 0) == _SQLITE_OK)
    # Initialised again either way (it would be on the next connection anyway).
    lib.sqlite3_initialize()
    return done
