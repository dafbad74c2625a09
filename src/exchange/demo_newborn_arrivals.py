"""How the newborn story's departments receive a birth: push endpoints served on loopback
hand events to an inbox, civil affairs long-polls its pull feed, and the story waits until
each has the child's registration. Also the plain HTTP calls the story makes where the
SDK has no method (bearer headers, refusals raised with the exchange's error code)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from exchange.client import PushReceiver
from exchange.demo_newborn_cast import CONSUMERS, Arrival, NewbornReport

__all__ = ["Inbox", "auth_headers", "raise_for_error", "serving", "wait_for"]


class Inbox:
    """What the push receivers hand over, from their server threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def handler(self, code: str) -> Any:
        def on_event(event: dict[str, Any]) -> None:
            with self.lock:
                self.events.setdefault(code, []).append((time.monotonic(), event))

        return on_event

    def find(self, code: str, key: str) -> tuple[float, dict[str, Any]] | None:
        with self.lock:
            return next((x for x in self.events.get(code, ()) if x[1]["key"] == key), None)


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raise_for_error(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        try:
            error = resp.json()["error"]
            text = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            text = resp.text[:200]
        raise RuntimeError(
            f"{resp.request.method} {resp.request.url.path} → {resp.status_code} {text}"
        )


@contextmanager
def serving(receiver: PushReceiver, host: str) -> Iterator[str]:
    with receiver.serve(host, 0) as address:
        yield address


def wait_for(
    http: httpx.Client,
    inbox: Inbox,
    report: NewbornReport,
    keys: dict[str, str],
    child: str,
    started: float,
    timeout: float,
) -> None:
    """Until every department has the child's registration, or ``timeout`` seconds."""
    deadline = started + timeout
    pull = [c for c in CONSUMERS if c.delivery == "pull"]
    cursors: dict[str, int | None] = {c.code: None for c in pull}
    while len(report.arrivals) < len(CONSUMERS) and time.monotonic() < deadline:
        for c in CONSUMERS:
            if c.code in report.arrivals or c.delivery != "push":
                continue
            found = inbox.find(c.code, child)
            if found is not None:
                report.arrivals[c.code] = Arrival(found[0] - started, found[1])
        for c in pull:
            if c.code in report.arrivals:
                continue
            params: dict[str, Any] = {"wait": min(5.0, max(0.0, deadline - time.monotonic()))}
            if cursors[c.code] is not None:
                params["cursor"] = cursors[c.code]
            page = http.get(
                f"/api/v1/subscriptions/{report.subscriptions[c.code]}/events",
                params=params,
                headers=auth_headers(keys[c.code]),
            )
            raise_for_error(page)
            body = page.json()
            cursors[c.code] = body["next_cursor"]
            for event in body["events"]:
                if event["key"] == child:
                    report.arrivals[c.code] = Arrival(time.monotonic() - started, event)
        if len(report.arrivals) < len(CONSUMERS) and not pull:
            time.sleep(0.05)
