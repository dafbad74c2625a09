"""``ExchangeClient`` (blocking) and ``AsyncExchangeClient`` over httpx.

Neither writes its calls out: each method is derived from the one builder of
:class:`~exchange.client._calls.Calls` that describes it, keeping the builder's typed
signature and docstring (:func:`_blocking`, :func:`_awaited`; ``ParamSpec`` lets mypy and
editors see the real parameters). What each client writes itself is only what differs:
opening and closing, sending one call, and the streamed export.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, get_args

import httpx
import orjson
from pydantic import BaseModel

from exchange.client._calls import (
    ApiCall,
    Calls,
    PlatformClock,
    case_headers,
    check_response,
)
from exchange.client._errors import ExportInterrupted, TransportError
from exchange.libraries.schemas import LookupAnswer

__all__ = ["DEFAULT_URL", "AsyncExchangeClient", "ExchangeClient", "PlatformClock"]

DEFAULT_URL = "http://127.0.0.1:8000"

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")


def _describe(method: Callable[..., Any], build: Callable[..., ApiCall[Any]], owner: str) -> None:
    """Give a derived method its builder's name, docstring and signature (with ``self``
    and the answer's model), so ``help()`` and ``inspect`` show what mypy sees."""
    method.__name__ = build.__name__
    method.__qualname__ = f"{owner}.{build.__name__}"
    method.__doc__ = build.__doc__
    signature = inspect.signature(build, eval_str=True)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    (model,) = get_args(signature.return_annotation)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()], return_annotation=model
    )


def _blocking(build: Callable[P, ApiCall[M]]) -> Callable[Concatenate[ExchangeClient, P], M]:
    """The :class:`ExchangeClient` method that sends what ``build`` describes."""

    def method(self: ExchangeClient, /, *args: P.args, **kwargs: P.kwargs) -> M:
        return self._send(build(*args, **kwargs))

    _describe(method, build, "ExchangeClient")
    return method


def _awaited(
    build: Callable[P, ApiCall[M]],
) -> Callable[Concatenate[AsyncExchangeClient, P], Coroutine[Any, Any, M]]:
    """The :class:`AsyncExchangeClient` method that sends what ``build`` describes."""

    async def method(self: AsyncExchangeClient, /, *args: P.args, **kwargs: P.kwargs) -> M:
        return await self._send(build(*args, **kwargs))

    _describe(method, build, "AsyncExchangeClient")
    return method


def _client_args(base_url: str, key: str | None, timeout: float, transport: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    args: dict[str, Any] = {"base_url": base_url, "headers": headers, "timeout": timeout}
    if transport is not None:
        args["transport"] = transport
    return args


def _request(call: ApiCall[Any]) -> dict[str, Any]:
    """The arguments of ``httpx`` ``request()`` for one call (the same for both clients)."""
    return {
        "method": call.method,
        "url": call.path,
        "params": call.params or None,
        "content": None if call.body is None else orjson.dumps(call.body),
        "headers": {"Content-Type": "application/json", **call.headers}
        if call.body is not None
        else call.headers,
    }


def _answer(call: ApiCall[M], response: httpx.Response) -> M:
    check_response(response)
    return call.model.model_validate_json(response.content)


def _export_stream(
    topic: str, offset: int, limit: int, items: Sequence[str] | None, case: str | None
) -> dict[str, Any]:
    """The arguments of ``httpx`` ``stream()`` for an export."""
    return {
        "method": "GET",
        "url": f"/api/v1/exchange/{topic}/export",
        "params": Calls.export_params(offset, limit, items),
        "headers": case_headers(case),
    }


class _Records:
    """Newline-delimited JSON records out of the chunks of a stream, in order; counts them
    so that a broken stream can say how many arrived whole."""

    def __init__(self) -> None:
        self.carry = b""
        self.count = 0

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        lines = (self.carry + chunk).split(b"\n")
        self.carry = lines.pop()
        for line in lines:
            if line:
                self.count += 1
                yield orjson.loads(line)

    def finish(self) -> None:
        if self.carry.strip():
            raise ExportInterrupted("the export ended inside a record", self.count)

    def broken(self, exc: httpx.TransportError) -> ExportInterrupted:
        return ExportInterrupted(f"the export stream broke off: {exc}", self.count)


class ExchangeClient:
    """The exchange's API for one department (or the operator), blocking.

    ``key`` is the caller's API key (``Authorization: Bearer``). Pass ``transport`` (an
    ``httpx.BaseTransport``, e.g. ``httpx.MockTransport``) to test without a server.
    Every method raises :class:`~exchange.client.ExchangeAPIError` (a subclass per kind)
    when the exchange refuses, and :class:`~exchange.client.TransportError` when it cannot
    be reached. Use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(**_client_args(base_url, key, timeout, transport))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, call: ApiCall[M]) -> M:
        try:
            response = self.http.request(**_request(call))
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return _answer(call, response)

    # -- catalog ----------------------------------------------------------------------------
    search_topics = _blocking(Calls.search_topics)
    get_topic = _blocking(Calls.get_topic)
    register_topic = _blocking(Calls.register_topic)
    change_topic = _blocking(Calls.change_topic)
    retire_topic = _blocking(Calls.retire_topic)
    # -- applications, reviews, disputes ----------------------------------------------------
    apply = _blocking(Calls.apply)
    list_applications = _blocking(Calls.list_applications)
    get_application = _blocking(Calls.get_application)
    approve = _blocking(Calls.approve)
    reject = _blocking(Calls.reject)
    dispute = _blocking(Calls.dispute)
    get_dispute = _blocking(Calls.get_dispute)
    post_message = _blocking(Calls.post_message)
    decide = _blocking(Calls.decide)
    # -- grants -----------------------------------------------------------------------------
    list_grants = _blocking(Calls.list_grants)
    get_grant = _blocking(Calls.get_grant)
    revoke_grant = _blocking(Calls.revoke_grant)
    # -- exchange ---------------------------------------------------------------------------
    query = _blocking(Calls.query)
    verify = _blocking(Calls.verify)
    verify_many = _blocking(Calls.verify_many)
    # -- audit and the clock ----------------------------------------------------------------
    audit_entries = _blocking(Calls.audit_entries)
    audit_stats = _blocking(Calls.audit_stats)
    verify_audit = _blocking(Calls.verify_audit)
    clock = _blocking(Calls.clock)
    # -- credit (双公示) ----------------------------------------------------------------------
    submit_credit_records = _blocking(Calls.submit_credit_records)
    announce_credit_decisions = _blocking(Calls.announce_credit_decisions)
    search_credit_records = _blocking(Calls.search_credit_records)
    credit_lists = _blocking(Calls.credit_lists)
    credit_list = _blocking(Calls.credit_list)
    credit_stats = _blocking(Calls.credit_stats)
    # -- electronic licences (电子证照) -------------------------------------------------------
    issue_licence = _blocking(Calls.issue_licence)
    revoke_licence = _blocking(Calls.revoke_licence)
    holder_licences = _blocking(Calls.holder_licences)
    use_licence = _blocking(Calls.use_licence)
    licence_stats = _blocking(Calls.licence_stats)
    # -- base information libraries (基础信息库) ------------------------------------------
    library_query = _blocking(Calls.library_query)
    library_conflicts = _blocking(Calls.library_conflicts)
    resolve_library_conflict = _blocking(Calls.resolve_library_conflict)

    def enterprise(self, credit_code: str) -> LookupAnswer:
        """One enterprise from the legal-person library (法人基础信息库)."""
        return self.library_query("enterprise", [credit_code])

    def person(self, id_number: str) -> LookupAnswer:
        """One person from the population library (人口基础信息库)."""
        return self.library_query("person", [id_number])

    def export(
        self,
        topic: str,
        *,
        offset: int = 0,
        limit: int = 10_000,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream a table topic's records (granted items only), one dict at a time.

        Raises :class:`~exchange.client.ExportInterrupted` if the stream ends early.
        """
        records = _Records()
        try:
            with self.http.stream(**_export_stream(topic, offset, limit, items, case)) as resp:
                if not resp.is_success:
                    resp.read()
                    check_response(resp)
                for chunk in resp.iter_bytes():
                    yield from records.feed(chunk)
                records.finish()
        except httpx.TransportError as exc:
            raise records.broken(exc) from exc


class AsyncExchangeClient:
    """:class:`ExchangeClient` for asyncio: the same methods, awaited (``export`` is an
    async iterator)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(**_client_args(base_url, key, timeout, transport))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, call: ApiCall[M]) -> M:
        try:
            response = await self.http.request(**_request(call))
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return _answer(call, response)

    # -- catalog ----------------------------------------------------------------------------
    search_topics = _awaited(Calls.search_topics)
    get_topic = _awaited(Calls.get_topic)
    register_topic = _awaited(Calls.register_topic)
    change_topic = _awaited(Calls.change_topic)
    retire_topic = _awaited(Calls.retire_topic)
    # -- applications, reviews, disputes ----------------------------------------------------
    apply = _awaited(Calls.apply)
    list_applications = _awaited(Calls.list_applications)
    get_application = _awaited(Calls.get_application)
    approve = _awaited(Calls.approve)
    reject = _awaited(Calls.reject)
    dispute = _awaited(Calls.dispute)
    get_dispute = _awaited(Calls.get_dispute)
    post_message = _awaited(Calls.post_message)
    decide = _awaited(Calls.decide)
    # -- grants -----------------------------------------------------------------------------
    list_grants = _awaited(Calls.list_grants)
    get_grant = _awaited(Calls.get_grant)
    revoke_grant = _awaited(Calls.revoke_grant)
    # -- exchange ---------------------------------------------------------------------------
    query = _awaited(Calls.query)
    verify = _awaited(Calls.verify)
    verify_many = _awaited(Calls.verify_many)
    # -- audit and the clock ----------------------------------------------------------------
    audit_entries = _awaited(Calls.audit_entries)
    audit_stats = _awaited(Calls.audit_stats)
    verify_audit = _awaited(Calls.verify_audit)
    clock = _awaited(Calls.clock)
    # -- credit (双公示) ----------------------------------------------------------------------
    submit_credit_records = _awaited(Calls.submit_credit_records)
    announce_credit_decisions = _awaited(Calls.announce_credit_decisions)
    search_credit_records = _awaited(Calls.search_credit_records)
    credit_lists = _awaited(Calls.credit_lists)
    credit_list = _awaited(Calls.credit_list)
    credit_stats = _awaited(Calls.credit_stats)
    # -- electronic licences (电子证照) -------------------------------------------------------
    issue_licence = _awaited(Calls.issue_licence)
    revoke_licence = _awaited(Calls.revoke_licence)
    holder_licences = _awaited(Calls.holder_licences)
    use_licence = _awaited(Calls.use_licence)
    licence_stats = _awaited(Calls.licence_stats)
    # -- base information libraries (基础信息库) ------------------------------------------
    library_query = _awaited(Calls.library_query)
    library_conflicts = _awaited(Calls.library_conflicts)
    resolve_library_conflict = _awaited(Calls.resolve_library_conflict)

    async def enterprise(self, credit_code: str) -> LookupAnswer:
        """One enterprise from the legal-person library (法人基础信息库)."""
        return await self.library_query("enterprise", [credit_code])

    async def person(self, id_number: str) -> LookupAnswer:
        """One person from the population library (人口基础信息库)."""
        return await self.library_query("person", [id_number])

    async def export(
        self,
        topic: str,
        *,
        offset: int = 0,
        limit: int = 10_000,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream a table topic's records (granted items only), one dict at a time.

        Raises :class:`~exchange.client.ExportInterrupted` if the stream ends early.
        """
        records = _Records()
        try:
            async with self.http.stream(
                **_export_stream(topic, offset, limit, items, case)
            ) as resp:
                if not resp.is_success:
                    await resp.aread()
                    check_response(resp)
                async for chunk in resp.aiter_bytes():
                    for record in records.feed(chunk):
                        yield record
                records.finish()
        except httpx.TransportError as exc:
            raise records.broken(exc) from exc
