"""A bare Python forwarding hop on the exchange's own serving stack, for bench/broker_floor.py.

The exchange's server (``exchange.serving.run``: uvicorn's httptools protocol with the
lean path and the end-of-turn writes, uvloop) and its provider client, with none of the
broker's pipeline: no key, no grant, no item filtering, no audit, no metrics. What a
lookup costs a Python process on this stack before the exchange's own work, so that the
distance from it to the broker is the pipeline's.

    python bench/_pyhop.py PORT ROUTES.json MODE DIRECT_KEY SECRET

``ROUTES.json`` maps a broker path (``/api/v1/exchange/{front}/{seq}/query``) to
``[provider, department URL of the topic's …/query, key item or null]``. Modes:

* ``hop``: the body POSTed as it came to the department with the direct-access key
  (``broker/_h1``'s pooled HTTP/1.1 client), its answer returned as it is;
* ``shared``: the keys read from the body and looked up through the broker's own
  ``LookupBatcher`` and ``Upstream`` (signed provider calls, shared as the broker shares
  them), the answer written again with orjson, as the broker answers.
"""

from __future__ import annotations

import functools
import gc
import json
import sys
from pathlib import Path
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from exchange.broker._h1 import H1Pool
from exchange.broker.batching import LookupBatcher
from exchange.broker.upstream import Upstream, UpstreamConfig
from exchange.provider_auth import derive_provider_secret
from exchange.serving import LeanAnswer, LeanHandler, RequestIds, json_answer, run

Route = tuple[str, str, str | None]
_NOT_FOUND: LeanAnswer = (404, [(b"content-length", b"0")], b"")


class Hop:
    """The ASGI app: lifespan (opens the client), a lean handler per known path, and 404."""

    def __init__(self, routes: dict[str, Route], mode: str, direct_key: str, secret: str) -> None:
        self.routes = routes
        self.mode = mode
        self.secret = secret
        self.headers = (
            f"Authorization: Bearer {direct_key}\r\nContent-Type: application/json\r\n".encode()
        )
        self.request_id = RequestIds()
        self.pool = H1Pool(64)
        self.targets = {path: self.pool.target(url) for path, (_, url, _) in routes.items()}
        self.batcher: LookupBatcher | None = None

    async def start(self) -> None:
        if self.mode == "shared":
            upstream = Upstream(
                UpstreamConfig(), credentials=functools.partial(derive_provider_secret, self.secret)
            )
            await upstream.start()
            self.batcher = LookupBatcher(upstream)

    def lean_route(self, scope: Scope) -> LeanHandler | None:
        route = self.routes.get(scope["path"])
        if route is None or scope["method"] != "POST":
            return None
        if self.mode == "hop":
            return functools.partial(self.forward, scope["path"])
        return functools.partial(self.lookup, route)

    async def forward(self, path: str, _scope: Scope, body: bytes) -> LeanAnswer:
        target = self.targets[path]
        assert target is not None
        status, answer = await self.pool.post(
            target, body, self.headers, budget=10.0, connect_budget=5.0
        )
        return json_answer(status, answer, self.request_id(), None)

    async def lookup(self, route: Route, _scope: Scope, body: bytes) -> LeanAnswer:
        assert self.batcher is not None
        provider, url, key_item = route
        rid = self.request_id()
        keys = orjson.loads(body)["keys"]
        answer = await self.batcher.lookup(provider, url, keys, rid, key_item)
        payload = orjson.dumps(
            {"request_id": rid, "records": answer.records, "not_found": answer.not_found}
        )
        return json_answer(200, payload, rid, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message: Any = await receive()
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        status, headers, body = _NOT_FOUND
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    port, routes_file, mode, direct_key, secret = sys.argv[1:6]
    if mode not in ("hop", "shared"):
        raise SystemExit(f"mode: hop or shared, not {mode!r}")
    loaded = json.loads(Path(routes_file).read_text())
    routes = {path: (r[0], r[1], r[2]) for path, r in loaded.items()}
    app = Hop(routes, mode, direct_key, secret)
    gc.freeze()  # as the exchange does before serving
    run(app, host="127.0.0.1", port=int(port))


if __name__ == "__main__":
    main()
