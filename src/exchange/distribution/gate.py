"""The revocation gate: once a grant change is acknowledged, no push checked against the
old grant is still on its way.

A push checks the grant (through the authz cache) and then sends; a revoke acknowledged
between the two would otherwise be followed by a delivery. Each push holds the gate from
before its check until its send is answered; a change that takes access away (the
``narrowed`` announcement of :mod:`exchange.db.freshness`: a grant revoked, narrowed or
suspended, a subscription suspended or deleted; and clock moves, which can expire grants)
moves the gate to a new generation and, before it lets the acknowledgement go, waits for
the pushes of older generations to finish (at most ``timeout``: a hung endpoint cannot
hold a revoke forever). Changes that only add (a new grant, more items, a topic
registered) do not wait: nothing delivered under the old state is wrong under the new.
Pushes that start after the change check a cache the same transaction's ``authz``
announcement has already invalidated (it is dispatched first), so they see the revoke.
"""

from __future__ import annotations

import threading

__all__ = ["RevocationGate"]


class RevocationGate:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._in_flight: dict[int, int] = {}
        #: the event loop's thread: a change announced there cannot wait for pushes that
        #: need that very loop to finish
        self.loop_thread: int | None = None

    def enter(self) -> int:
        with self._cond:
            generation = self._generation
            self._in_flight[generation] = self._in_flight.get(generation, 0) + 1
            return generation

    def leave(self, generation: int) -> None:
        with self._cond:
            left = self._in_flight.get(generation, 0) - 1
            if left > 0:
                self._in_flight[generation] = left
            else:
                self._in_flight.pop(generation, None)
                self._cond.notify_all()

    def changed(self) -> None:
        """A grant or topic changed: wait out the pushes checked before it."""
        with self._cond:
            self._generation += 1
            current = self._generation
            if threading.get_ident() == self.loop_thread:
                return
            self._cond.wait_for(
                lambda: all(g >= current for g in self._in_flight), timeout=self.timeout
            )

    @property
    def generation(self) -> int:
        """Changes that took access away so far (each moved the gate once)."""
        with self._cond:
            return self._generation

    @property
    def in_flight(self) -> int:
        with self._cond:
            return sum(self._in_flight.values())
