"""``exchange.db.pagination.page``: the one way every list endpoint reads a page."""

from __future__ import annotations

from exchange.context import AppContext
from exchange.db.pagination import page
from exchange.members.models import Department

CODES = ["d1", "d2", "d3", "d4", "d5"]


def _seed(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        for i, code in enumerate(CODES):
            # Kinds alternate, so a condition keeps some rows and not others.
            kind = "municipal" if i % 2 == 0 else "district"
            session.add(Department(code=code, name=f"部门{code}", kind=kind))


def test_pages_in_key_order_with_the_total_of_every_match(ctx: AppContext) -> None:
    _seed(ctx)
    conds = [Department.code.in_(CODES)]
    with ctx.db.sessions() as session:
        seen: list[str] = []
        for offset in (0, 2, 4):
            total, rows = page(session, Department, Department.code, conds, offset=offset, limit=2)
            assert total == len(CODES)
            seen += [r.code for r in rows]
        assert seen == CODES  # pages neither overlap nor skip
        total, rows = page(session, Department, Department.code, conds, offset=5, limit=2)
        assert (total, list(rows)) == (5, [])


def test_conditions_narrow_both_the_total_and_the_page(ctx: AppContext) -> None:
    _seed(ctx)
    conds = [Department.code.in_(CODES), Department.kind == "district"]
    with ctx.db.sessions() as session:
        total, rows = page(session, Department, Department.code, conds, offset=0, limit=10)
    assert total == 2
    assert [r.code for r in rows] == ["d2", "d4"]


def test_an_order_replaces_the_key_order(ctx: AppContext) -> None:
    _seed(ctx)
    conds = [Department.code.in_(CODES)]
    with ctx.db.sessions() as session:
        total, rows = page(
            session,
            Department,
            Department.code,
            conds,
            order=(Department.kind, Department.code.desc()),
            offset=1,
            limit=3,
        )
    assert total == 5
    # district (d4, d2) before municipal (d5, d3, d1), each newest code first; from the 2nd.
    assert [r.code for r in rows] == ["d2", "d5", "d3"]
