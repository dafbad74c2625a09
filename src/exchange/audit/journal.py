"""The broker's local append-only journal: segment files written through a memory map,
each line authenticated with a MAC only the exchange's signing key can make.

Line format: ``<64 hex MAC> <canonical JSON of the entry>\\n``. Recovery replays only lines
whose MAC checks, so a line somebody wrote into the journal directory is refused (and
kept aside in ``refused.ndjson`` for ``exchange audit verify`` to report), never chained.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy.engine import make_url

from exchange.audit.entry import Entry
from exchange.audit.keys import MAC_HEX, Signer

log = logging.getLogger(__name__)

#: Size of a journal segment: a new one starts when an entry no longer fits, so a
#: committed segment can be deleted whole.
SEGMENT_BYTES = 4 * 1024 * 1024
#: Where refused lines are kept for the operator (verification reports them).
REFUSED = "refused.ndjson"
#: Written pages of the current segment that stay mapped into the process: past this, the
#: filled pages are unmapped (``MADV_DONTNEED``). They stay in the page cache, dirty, and
#: reach the file as before; only the process's resident size stops counting them. A
#: segment filled in the map otherwise added up to its 4 MB to the RSS and dropped it at
#: the next segment: a saw-tooth of 3 % of the exchange's RSS in the soak
#: (bench/results/soak.md).
RESIDENT_BYTES = 1024 * 1024


def journal_for(database_url: str) -> Path | None:
    """The journal directory of a SQLite file database (``<file>.journal``), else None.

    Only a local database gets a journal by default: the journal lives on the broker's
    disk, so several brokers sharing one PostgreSQL would each need their own.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().with_name(Path(database).name + ".journal")


#: Journals one database can have: one per live exchange process (``exchange up --workers``).
MAX_SLOTS = 32


def slots(base: Path) -> list[Path]:
    """The journal directories of one database that exist: ``base`` (the first process's,
    ``<file>.journal``) and ``<file>.journal.1``, ``.2`` … (more processes')."""
    found = [base] if base.is_dir() else []
    for k in range(1, MAX_SLOTS):
        path = base.with_name(f"{base.name}.{k}")
        if path.is_dir():
            found.append(path)
    return found


def claim(base: Path) -> Journal:
    """The first journal of ``base``'s database no live process holds (``base`` first):
    each exchange process writes its own journal, so a second worker needs no commit per
    call. Raises ``BlockingIOError`` when all :data:`MAX_SLOTS` are held."""
    for k in range(MAX_SLOTS):
        try:
            return Journal(base if k == 0 else base.with_name(f"{base.name}.{k}"))
        except BlockingIOError:
            continue
    raise BlockingIOError(f"every audit journal of {base} is held")


def line_of(signer: Signer, entry: Entry) -> bytes:
    body = entry.canonical()
    return signer.mac(body) + b" " + body + b"\n"


class Journal:
    """Segment files in one directory, owned by one process (``flock``), written through a
    shared memory map.

    A store into a ``MAP_SHARED`` mapping is in the page cache the moment it is made, so
    a killed process loses nothing, exactly as with ``write()``, but it costs no system
    call: measured in the broker, ``write()`` took ~28 µs a call while the writer thread's
    SQLite commits shared the file system journal. Segments are preallocated (sparse),
    so an unused tail reads as NUL bytes, which JSON text never contains.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise
        self.segment = 0
        self._map: mmap.mmap | None = None
        self.size = 0
        #: bytes of the current segment already unmapped (a page multiple)
        self._released = 0

    def segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("seg-*.ndjson"):
            try:
                found.append((int(path.stem[4:]), path))
            except ValueError:
                continue
        return sorted(found)

    def open_next(self) -> None:
        """Start a new segment (the next number after any on disk)."""
        last = max([self.segment, *(n for n, _ in self.segments())])
        fd = os.open(self.directory / f"seg-{last + 1:08d}.ndjson", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, SEGMENT_BYTES)
            mapped = mmap.mmap(fd, SEGMENT_BYTES)
        finally:
            os.close(fd)
        if self._map is not None:
            self._map.close()
        self._map, self.segment, self.size, self._released = mapped, last + 1, 0, 0

    def write(self, data: bytes) -> None:
        if self._map is None or self.size + len(data) > SEGMENT_BYTES:
            if len(data) > SEGMENT_BYTES:
                raise ValueError("an audit entry larger than a journal segment")
            self.open_next()
        assert self._map is not None
        self._map[self.size : self.size + len(data)] = data
        self.size += len(data)
        if self.size - self._released >= RESIDENT_BYTES:
            # Whole pages only: the one being filled stays mapped for the next line.
            upto = self.size - self.size % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
            self._released = upto

    @property
    def mapped(self) -> int:
        """Bytes of the current segment written and still mapped (at most
        :data:`RESIDENT_BYTES` plus a page)."""
        return self.size - self._released

    @staticmethod
    def read(path: Path) -> bytes:
        """A segment's written part (up to the first NUL of the preallocated tail)."""
        data = path.read_bytes()
        end = data.find(b"\0")
        return data if end < 0 else data[:end]

    def drop_before(self, segment: int) -> None:
        """Delete the segments numbered below ``segment`` (all their entries committed)."""
        for number, path in self.segments():
            if number < segment:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        os.close(self._lock_fd)


@dataclass(frozen=True, slots=True)
class Refused:
    """A journal line recovery would not replay."""

    segment: str
    line: int
    reason: str
    text: str


def read_entries(journal: Journal, signer: Signer) -> tuple[list[bytes], list[Refused]]:
    """The authenticated entry bodies of every segment in journal order, and the refused
    lines (kept aside in ``refused.ndjson``)."""
    bodies: list[bytes] = []
    refused: list[Refused] = []
    segments = journal.segments()
    for index, (_, path) in enumerate(segments):
        lines = journal.read(path).split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            mac, _, body = line.partition(b" ")
            if len(mac) == MAC_HEX and signer.mac_ok(body, mac):
                bodies.append(body)
                continue
            last = index == len(segments) - 1 and number == len(lines)
            if last and not line.endswith(b"}"):
                # A kill mid-copy leaves a partial last line: it was never acknowledged.
                continue
            refused.append(
                Refused(
                    path.name, number, "its MAC does not match", line[:400].decode(errors="replace")
                )
            )
    if refused:
        keep_refused(journal.directory, refused)
    return bodies, refused


def keep_refused(directory: Path, refused: list[Refused]) -> None:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    data = b"".join(
        orjson.dumps(
            {"at": at, "segment": r.segment, "line": r.line, "reason": r.reason, "text": r.text}
        )
        + b"\n"
        for r in refused
    )
    with (directory / REFUSED).open("ab") as fh:
        fh.write(data)
    for r in refused:
        log.error(
            "audit journal: refused %s line %d (%s): %.120s", r.segment, r.line, r.reason, r.text
        )


def refused_count(directory: Path | None) -> int:
    """Lines recovery refused so far (until the operator removes ``refused.ndjson``), in
    every journal of the database whose first journal is ``directory``."""
    if directory is None:
        return 0
    total = 0
    for slot in slots(directory):
        path = slot / REFUSED
        if path.exists():
            total += sum(1 for line in path.read_bytes().splitlines() if line.strip())
    return total
