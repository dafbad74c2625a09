"""``/api/v1/licences``: the electronic licence system (电子证照).

Who may do what:

* issuing departments' systems issue (``POST``) and revoke licences of the types they issue,
  and read what they issued;
* any department reads the type catalog and the counts;
* a department with a grant on the e-licence topic (电子证照信息) lists a holder's licences and
  uses (用证) one: the grant decides, and the call is audited as a broker exchange is;
* anybody reads the public key and the signed status list (what offline verification
  needs) and verifies a number and code online.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from exchange.context import AppContext, Caller, Ctx, present
from exchange.errors import ErrorBody, ExchangeError, NotPermitted, ValidationFailed
from exchange.licences import content as licence_content
from exchange.licences import service
from exchange.licences.gate import TOPIC_ITEMS, Gate
from exchange.licences.numbers import number_problem
from exchange.licences.schemas import (
    NUMBER,
    HolderKind,
    HolderLicences,
    IssueRequest,
    LicenceOut,
    LicencePage,
    LicenceStats,
    LicenceTypeOut,
    LicenceTypePage,
    RevokeRequest,
    StatusListOut,
    UseRequest,
    VerifyOut,
    VerifyRequest,
)
from exchange.licences.signing import LicenceSigner
from exchange.licences.token import StatusList
from exchange.licences.verifier import LicenceVerifier

router = APIRouter(
    prefix="/api/v1/licences",
    tags=["licences"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)

Number = Annotated[str, Path(pattern=NUMBER, description="A licence number (证照编号).")]
HolderId = Annotated[
    str,
    Path(
        pattern=r"^[0-9A-Z]{17}[0-9A-Z]$",
        description="Resident ID number or unified social credit code.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
CaseHeader = Annotated[
    str | None,
    Header(alias="X-Exchange-Case", description="The business case served (kept in the audit)."),
]


def _signer(ctx: AppContext) -> LicenceSigner:
    return present(
        ctx.licence_signer, "the licence signing key is not loaded", code="licence_key_missing"
    )


def _gate(ctx: AppContext) -> Gate:
    return present(
        ctx.licence_gate, "the licence system is not running here", code="licences_unavailable"
    )


async def get_signer(ctx: Ctx) -> LicenceSigner:
    return _signer(ctx)


async def get_gate(ctx: Ctx) -> Gate:
    return _gate(ctx)


Signer = Annotated[LicenceSigner, Depends(get_signer)]
TheGate = Annotated[Gate, Depends(get_gate)]


def _department(principal: Any) -> None:
    if principal.is_operator:
        raise NotPermitted(
            "the operator key does not act for a department: call with a department's key",
            code="not_a_department",
        )


# -- public: what offline verification needs ------------------------------------------------


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "PEM public key."}},
)
def public_key(signer: Signer) -> PlainTextResponse:
    """The public half of the platform's licence signing key (Ed25519, PEM): what every
    verification code is checked against. No key needed to read it."""
    return PlainTextResponse(signer.public_pem(), headers={"X-Licence-Key-Id": signer.key_id})


@router.get("/status-list", response_model=StatusListOut)
def status_list(ctx: Ctx, signer: Signer) -> dict[str, str]:
    """The signed status list: every revoked licence (number → reason and time), the
    platform clock's offset (expiry follows the platform's day) and how long a copy may be
    relied on. Offline verifiers fetch it when they can and keep a copy. No key needed."""
    with ctx.db.sessions() as session:
        return service.status_document(
            session,
            signer,
            now=ctx.clock.now(),
            clock_offset_s=ctx.clock.offset_seconds(),
            max_age_s=ctx.settings.licence_status_max_age,
        )


@router.post("/verify", response_model=VerifyOut)
def verify(ctx: Ctx, body: VerifyRequest, signer: Signer) -> dict[str, Any]:
    """Verify a licence's number and verification code online, exactly as the offline
    verifier does with a fresh status list (the portal's verification view uses it). The
    answer is what the code itself carries plus its status; no key needed."""
    verifier = LicenceVerifier([signer.signer.private.public_key()])
    document = status_list(ctx, signer)
    verifier.status = StatusList.parse(document, verifier.keys)
    return verifier.verify(
        body.number, body.code, content=body.content, today=ctx.clock.today()
    ).as_dict()


# -- the type catalog and counts ------------------------------------------------------------


@router.get("/types", response_model=LicenceTypePage)
def list_types(
    ctx: Ctx,
    _caller: Caller,
    issuer: Annotated[str | None, Query(max_length=32)] = None,
    online: bool | None = None,
    holder_kind: HolderKind | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> LicenceTypePage:
    """The licence-type catalog (证照目录): issuer, holder kind, items, validity, online."""
    with ctx.db.sessions() as session:
        items, total = service.list_types(
            session,
            issuer=issuer,
            online=online,
            holder_kind=holder_kind,
            limit=limit,
            offset=offset,
        )
    return LicenceTypePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/types/{code}", response_model=LicenceTypeOut)
def get_type(
    ctx: Ctx, _caller: Caller, code: Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9]{1,7}$")]
) -> LicenceTypeOut:
    """One licence type."""
    with ctx.db.sessions() as session:
        return LicenceTypeOut.model_validate(service.get_type(session, code))


@router.get("/stats", response_model=LicenceStats)
def stats(ctx: Ctx, _caller: Caller) -> LicenceStats:
    """Licences per type: the profile's starting state plus those issued through the
    platform (which grow as the mock departments issue with the simulated time)."""
    as_of = ctx.licence_as_of
    if as_of is None:
        as_of = ctx.licence_as_of = licence_content.load(ctx.settings.catalog_dir).profile.as_of
    with ctx.db.sessions() as session:
        return service.stats(session, as_of)


# -- issuing departments --------------------------------------------------------------------


@router.post(
    "",
    response_model=LicenceOut,
    status_code=201,
    responses={200: {"model": LicenceOut}, 409: {"model": ErrorBody}},
)
async def issue(
    request: Request, ctx: Ctx, principal: Caller, gate: TheGate, body: IssueRequest
) -> JSONResponse:
    """Issue one licence (发证), signed by the platform, with its verification code.

    Only the type's issuing department, only for an online type; the holder's identifier
    and the items are checked against the type. Sending an ``external_ref`` already used
    returns the licence issued then (200) instead of a second one (201). Audited."""
    call = gate.begin(request, "licence.issue", principal, None)
    try:
        _department(principal)
        out, created = await run_in_threadpool(_issue, ctx, principal, body)
    except ExchangeError as exc:
        await gate.fail(call, exc)
        raise
    call.case = out.number
    call.records = 1
    status = 201 if created else 200
    await gate.finish(call, "ok", status)
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


def _issue(ctx: AppContext, principal: Any, body: IssueRequest) -> tuple[LicenceOut, bool]:
    today = ctx.clock.today()
    with ctx.db.session() as session:
        licence, created = service.issue(
            session, _signer(ctx), principal, body, now=ctx.clock.now(), today=today
        )
        out = service.to_out(session, licence, today)
    return out, created


@router.post("/{number}/revoke", response_model=LicenceOut, responses={409: {"model": ErrorBody}})
async def revoke(
    request: Request,
    ctx: Ctx,
    principal: Caller,
    gate: TheGate,
    number: Number,
    body: RevokeRequest,
) -> LicenceOut:
    """Revoke a licence (注销/吊销): only its issuing department, once. It then fails
    verification as revoked once verifiers have the next status list. Audited."""
    call = gate.begin(request, "licence.revoke", principal, number)
    try:
        _department(principal)
        out = await run_in_threadpool(_revoke, ctx, principal, number, body.reason)
    except ExchangeError as exc:
        await gate.fail(call, exc)
        raise
    call.records = 1
    await gate.finish(call, "ok", 200)
    return out


def _revoke(ctx: AppContext, principal: Any, number: str, reason: str) -> LicenceOut:
    with ctx.db.session() as session:
        licence = service.revoke(session, principal, number, reason, now=ctx.clock.now())
        return service.to_out(session, licence, ctx.clock.today())


@router.get("", response_model=LicencePage)
def list_issued(
    ctx: Ctx,
    principal: Caller,
    type_code: Annotated[str | None, Query(max_length=8)] = None,
    holder_id: Annotated[str | None, Query(max_length=18)] = None,
    issuer: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> LicencePage:
    """Licences a department issued (the operator: any department's, or all)."""
    if not principal.is_operator:
        if issuer is not None and issuer != principal.code:
            raise NotPermitted("a department lists only what it issued", code="not_your_department")
        issuer = principal.code
    today = ctx.clock.today()
    with ctx.db.sessions() as session:
        rows, total = service.list_licences(
            session,
            issuer=issuer,
            type_code=type_code,
            holder_id=holder_id,
            limit=limit,
            offset=offset,
        )
        items = [service.to_out(session, r, today) for r in rows]
    return LicencePage(items=items, total=total, limit=limit, offset=offset)


# -- using licences (用证), under a grant ----------------------------------------------------


@router.get("/holders/{holder_id}", response_model=HolderLicences)
async def holder_licences(
    request: Request,
    ctx: Ctx,
    principal: Caller,
    gate: TheGate,
    holder_id: HolderId,
    type_code: Annotated[str | None, Query(max_length=8, pattern=r"^[A-Z][A-Z0-9]{1,7}$")] = None,
    case: CaseHeader = None,
) -> HolderLicences:
    """A holder's licences (by resident ID number or credit code, optionally of one type),
    each with the items of the e-licence topic the caller is granted; one record of quota
    per licence. Needs a grant on the e-licence topic (电子证照信息). Audited."""
    call = gate.begin(request, "licence.list", principal, case)
    call.provider = "zsj"
    try:
        _department(principal)
        decision = await gate.check(call, None, 1)
        records = await run_in_threadpool(_holder_records, ctx, holder_id, type_code)
        granted = decision.items
        records = [{k: v for k, v in r.items() if k in granted} for r in records]
        call.records = len(records)
        gate.consume(decision.grant_id, len(records))
    except ExchangeError as exc:
        await gate.fail(call, exc)
        raise
    await gate.finish(call, "ok", 200)
    return HolderLicences(
        holder_id=holder_id, licences=records, items=[i for i in TOPIC_ITEMS if i in granted]
    )


def _holder_records(ctx: AppContext, holder_id: str, type_code: str | None) -> list[dict[str, Any]]:
    today = ctx.clock.today()
    with ctx.db.sessions() as session:
        return [
            service.topic_record(session, r, today)
            for r in service.holder_licences(session, holder_id, type_code)
        ]


@router.post("/{number}/use", response_model=LicenceOut)
async def use(
    request: Request,
    ctx: Ctx,
    principal: Caller,
    gate: TheGate,
    number: Number,
    body: UseRequest,
) -> LicenceOut:
    """Use a licence (用证) in place of paper: the whole licence, items and verification
    code, with its status on the platform's day. Needs a grant on every item of the
    e-licence topic; the purpose is kept in the audit log with the number."""
    call = gate.begin(request, "licence.use", principal, f"{number} {body.purpose}")
    try:
        _department(principal)
        problem = number_problem(number)
        if problem is not None:
            raise ValidationFailed(f"number: {problem}", field="number", code="bad_number")
        decision = await gate.check(call, TOPIC_ITEMS, 1)
        out = await run_in_threadpool(_get, ctx, number)
        call.provider = out.issuer
        call.records = 1
        gate.consume(decision.grant_id, 1)
    except ExchangeError as exc:
        await gate.fail(call, exc)
        raise
    await gate.finish(call, "ok", 200)
    return out


def _get(ctx: AppContext, number: str) -> LicenceOut:
    with ctx.db.sessions() as session:
        return service.to_out(session, service.get_licence(session, number), ctx.clock.today())


@router.get("/{number}", response_model=LicenceOut)
def get_licence(ctx: Ctx, principal: Caller, number: Number) -> LicenceOut:
    """A licence, to its issuing department (and the operator); other departments use it
    through ``POST /{number}/use`` under a grant."""
    with ctx.db.sessions() as session:
        licence = service.get_licence(session, number)
        if not principal.is_operator and principal.code != licence.issuer:
            raise NotPermitted(
                f"{number} is read by its issuer; use it through /use under a grant",
                code="not_the_issuer",
            )
        return service.to_out(session, licence, ctx.clock.today())
