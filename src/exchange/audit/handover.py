"""How the audit writer's callers hear of their entries: the pending entry and the flush
marker as queued, and each outcome (the entry's ``seq`` or :class:`AuditUnavailable`) handed
back to its future or, a group at a time, to its event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from exchange.audit.entry import Entry
from exchange.errors import Unavailable

__all__ = ["STOP", "AuditUnavailable", "Flush", "Pending", "hand_over"]


class AuditUnavailable(Unavailable):
    """The call cannot be audited (the entry could not be made durable, or this part runs no
    audit writer), so the exchange must not answer it: 503 ``broker.audit_unavailable``.

    Every service answers it alike: the one :data:`ADVICE` as the message (what the caller
    should do) and the particular ``reason`` in ``detail`` (and in ``str()``, for logs).
    ``broker.``: in the error model that prefix is the exchange's own side of a fault.
    """

    code = "broker.audit_unavailable"
    ADVICE = (
        "the exchange cannot record this call in its audit log, so it does not answer it: "
        "retry shortly; if this persists, tell the platform operator"
    )

    def __init__(self, reason: str) -> None:
        super().__init__(self.ADVICE, detail={"side": "broker", "reason": reason})
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(slots=True)
class Pending:
    """An entry on its way to the writer's thread, and who waits for its outcome."""

    entry: Entry
    #: resolved with the seq once committed; None when nobody waits for the commit
    future: concurrent.futures.Future[int] | None = None
    #: journal segment holding the entry (0: not journaled)
    segment: int = 0
    #: :meth:`AuditWriter.record`'s waiter on its event loop (commit-wait mode), settled
    #: with the rest of its group in one call onto that loop
    waiter: asyncio.Future[int] | None = None


@dataclass(slots=True)
class Flush:
    """Queue marker: commit what came before now, then set ``done``."""

    done: threading.Event = field(default_factory=threading.Event)


#: Queue marker: the writer's thread ends once it has committed what came before.
STOP = object()


def _resolve(future: concurrent.futures.Future[int] | None, seq: int) -> None:
    # The waiter may be gone (its request cancelled, which cancels the future): setting a
    # result then raises InvalidStateError, which once killed this thread.
    if future is not None and not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_result(seq)


def _reject(future: concurrent.futures.Future[int] | None, error: Exception) -> None:
    if future is not None and not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_exception(error)


_Outcome = int | Exception


def _settle(results: list[tuple[asyncio.Future[int], _Outcome]]) -> None:
    """On the waiters' loop: give each its seq or its error."""
    for waiter, outcome in results:
        if waiter.done():  # its caller went away (the request was cancelled)
            continue
        if isinstance(outcome, Exception):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def hand_over(outcomes: Iterable[tuple[Pending, _Outcome]]) -> None:
    """Answer each pending entry's caller: futures one by one, and the event loop's
    waiters of a group in one call onto their loop. A future per waiter cost a wake-up
    of the loop (a write to its self-pipe) per entry; a group of 64 cost 64."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], _Outcome]]] = {}
    for pending, outcome in outcomes:
        waiter = pending.waiter
        if waiter is not None:
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        elif isinstance(outcome, Exception):
            _reject(pending.future, outcome)
        else:
            _resolve(pending.future, outcome)
    for loop, results in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, results)
