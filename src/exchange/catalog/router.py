"""``/api/v1/catalog``: 目录检索、注册、变更、废置, version history and the change feed."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from exchange.catalog import service
from exchange.catalog.schemas import (
    CATEGORY_PATTERN,
    SEQUENCE_PATTERN,
    CatalogGroup,
    ChangePage,
    Classification,
    ResourceType,
    SharingType,
    TopicChange,
    TopicCreate,
    TopicOut,
    TopicPage,
    TopicRetire,
)
from exchange.context import Caller, Ctx, DbSession, ctx_of
from exchange.errors import ValidationFailed
from exchange.fields import INT32_MAX
from exchange.members.models import Department

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])

Front = Annotated[str, Path(description="Front part of the resource code", examples=["101001001"])]
Seq = Annotated[str, Path(description="Sequence part of the resource code", examples=["000001"])]


_DEPRECATED_CATEGORY = "thematic"

# Past any catalog's size (platform-2020 has 3,722 topics); bounds what a page can ask.
MAX_OFFSET = 1_000_000


def _check_code(front: str, seq: str) -> None:
    if not re.fullmatch(CATEGORY_PATTERN, front) or not re.fullmatch(SEQUENCE_PATTERN, seq):
        raise ValidationFailed(
            f"{front}/{seq} is not a resource code: expected 9 digits starting 1-3, '/', "
            "6 digits (e.g. 101001001/000001)",
            field="resource_code",
            code="invalid_resource_code",
        )


@router.post("/topics", status_code=status.HTTP_201_CREATED, response_model=TopicOut)
def register_topic(body: TopicCreate, session: DbSession, caller: Caller, ctx: Ctx) -> TopicOut:
    """Register a topic (目录注册). The provider department or the operator may register.

    The catalog assigns the sequence part of the resource code. An item that declares itself
    the source of a data element another topic already sources is refused with 409
    ``source_conflict`` naming the owner (一数一源).
    """
    topic = service.register(session, body, caller, ctx.clock.now())
    session.commit()
    return service.to_out(topic, session.get(Department, topic.provider), versions=[])


@router.get(
    "/topics",
    response_model=None,
    responses={200: {"model": TopicPage, "description": "One page of matching topics."}},
)
async def search_topics(
    request: Request,
    q: Annotated[
        str | None, Query(max_length=200, description="Keywords (AND), any script")
    ] = None,
    category: Annotated[
        str | None,
        Query(
            description="The platform's group: basic (基础信息) | departmental (部门信息) | "
            "special (专项信息), or a resource-code prefix of digits. Deprecated: thematic "
            "(the national classification 2, 主题), answered as classification=thematic "
            "with a Deprecation header."
        ),
    ] = None,
    group: Annotated[
        CatalogGroup | None, Query(description="Same as category=basic|departmental|special")
    ] = None,
    classification: Annotated[
        Classification | None,
        Query(description="The national classification 类 (first digit of the code)"),
    ] = None,
    provider: str | None = None,
    sharing_type: SharingType | None = None,
    status: Annotated[
        str, Query(pattern="^(published|retired|all)$", description="published | retired | all")
    ] = "published",
    resource_type: ResourceType | None = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Response:
    """Search the catalog (目录检索): keywords over names, abstracts and item names."""
    prefix: str | None = None
    deprecated: str | None = None
    if category is not None:
        if category in CatalogGroup.__members__:
            group = CatalogGroup(category)
        elif category == _DEPRECATED_CATEGORY:
            # Until 2026-12 category named the national classification (basic / thematic /
            # departmental); basic and departmental now name the platform's groups of the
            # same names, thematic has no group and keeps its old meaning for old callers.
            classification = Classification.thematic
            deprecated = (
                "299 - \"category=thematic is deprecated: category names the platform's "
                'groups (basic, departmental, special); use classification=thematic"'
            )
        elif category.isdigit() and 1 <= len(category) <= 9:
            prefix = category
        else:
            raise ValidationFailed(
                "category: use basic, departmental, special or a prefix of digits",
                field="category",
                code="invalid_category",
            )
    # Async with the key checked inline: the sync Caller/DbSession dependencies would cost
    # two thread-pool hops, more than the search. The database is read only when the
    # index's look at the change feed is older than its poll interval.
    ctx = ctx_of(request)
    ctx.auth.authenticate(request.headers.get("authorization"))
    index = ctx.catalog_index
    if not index.fresh:

        def sync() -> None:
            with ctx.db.sessions() as session:
                index.sync(session)

        await run_in_threadpool(sync)
    total, docs = index.search(
        q,
        {
            "classification": classification.value if classification else None,
            "group": group.value if group else None,
            "provider": provider,
            "sharing_type": sharing_type.value if sharing_type else None,
            "status": None if status == "all" else status,
            "resource_type": resource_type.value if resource_type else None,
        },
        category_prefix=prefix,
        offset=offset,
        limit=limit,
    )
    head = orjson.dumps({"total": total, "offset": offset, "limit": limit})
    body = head[:-1] + b',"items":[' + b",".join(docs) + b"]}"
    headers = {"Deprecation": "true", "Warning": deprecated} if deprecated else None
    return Response(body, media_type="application/json", headers=headers)


@router.get("/topics/{front}/{seq}", response_model=TopicOut)
def get_topic(front: Front, seq: Seq, session: DbSession, _caller: Caller) -> TopicOut:
    """One topic with its version history (retired topics stay readable)."""
    _check_code(front, seq)
    topic = service.get_topic(session, front, seq)
    return service.to_out(
        topic, session.get(Department, topic.provider), versions=service.history(session, topic)
    )


@router.get("/topics/{front}/{seq}/versions/{version}", response_model=dict[str, Any])
def get_topic_version(
    front: Front,
    seq: Seq,
    version: Annotated[int, Path(ge=1, le=INT32_MAX, description="Version number, from 1")],
    session: DbSession,
    _caller: Caller,
) -> dict[str, Any]:
    """The metadata exactly as it was at one version."""
    _check_code(front, seq)
    topic = service.get_topic(session, front, seq)
    snapshot = service.version_snapshot(session, topic, version)
    return {"resource_code": topic.resource_code, "version": version, "metadata": snapshot}


@router.patch("/topics/{front}/{seq}", response_model=TopicOut)
def change_topic(
    front: Front, seq: Seq, body: TopicChange, session: DbSession, caller: Caller, ctx: Ctx
) -> TopicOut:
    """Change a topic (目录变更): a new version that records what changed and why.

    Removing an item narrows the grants that held it.
    """
    _check_code(front, seq)
    topic = service.get_topic(session, front, seq)
    service.change(session, topic, body, caller, ctx.clock.now())
    session.commit()
    return service.to_out(
        topic, session.get(Department, topic.provider), versions=service.history(session, topic)
    )


@router.post("/topics/{front}/{seq}/retire", response_model=TopicOut)
def retire_topic(
    front: Front, seq: Seq, body: TopicRetire, session: DbSession, caller: Caller, ctx: Ctx
) -> TopicOut:
    """Retire a topic (目录废置): readable still, closed to new grants; its grants suspend."""
    _check_code(front, seq)
    topic = service.get_topic(session, front, seq)
    service.retire(session, topic, body.reason, caller, ctx.clock.now())
    session.commit()
    return service.to_out(
        topic, session.get(Department, topic.provider), versions=service.history(session, topic)
    )


@router.get("/changes", response_model=ChangePage)
async def changes(
    _caller: Caller,
    ctx: Ctx,
    after: Annotated[
        int, Query(ge=0, le=INT32_MAX, description="Cursor of the last change seen")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to long-poll when nothing is new")
    ] = 0,
) -> ChangePage:
    """The change feed: registrations, changes and retirements after a cursor, in order."""

    def read() -> ChangePage:
        with ctx.db.sessions() as session:
            rows, cursor = service.changes_after(session, after, limit)
        return ChangePage(changes=rows, next_cursor=cursor)

    deadline = time.monotonic() + wait
    page = await run_in_threadpool(read)
    while not page.changes and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        page = await run_in_threadpool(read)
    return page


@router.get("/sources", response_model=dict[str, dict[str, str]])
def element_sources(session: DbSession, _caller: Caller) -> dict[str, dict[str, str]]:
    """一数一源: every standard data element with its one source department and topic."""
    return {
        element: {"provider": provider, "resource_code": code}
        for element, (provider, code) in sorted(service.element_sources(session).items())
    }


@router.get("/stats", response_model=dict[str, Any])
def stats(session: DbSession, _caller: Caller) -> dict[str, Any]:
    """Counts by status, group, classification, sharing type and resource type."""
    return service.stats(session)
