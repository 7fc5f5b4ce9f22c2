"""Offset pagination shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int
    offset: int


def _page_params(default_limit: int) -> Callable[..., PageParams]:
    def page_params(
        limit: Annotated[
            int, Query(ge=1, le=500, description="Items per page (1–500).")
        ] = default_limit,
        offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
    ) -> PageParams:
        return PageParams(limit=limit, offset=offset)

    return page_params


PageDep = Annotated[PageParams, Depends(_page_params(50))]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(session: Session, query: Select, params: PageParams) -> tuple[list, int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.limit(params.limit).offset(params.offset)).all()
    return list(rows), int(total or 0)


#: For lists whose clients expect a bare JSON array: a page of up to 500 (by default, so a
#: client unaware of paging still gets everything a list usually holds), the total in
#: ``X-Total-Count`` and the next page in ``Link: <…>; rel="next"``.
PlainPageDep = Annotated[PageParams, Depends(_page_params(500))]


def plain_page_responses(total: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI text of the headers set by :func:`set_page_headers`; ``total`` says what
    X-Total-Count counts."""
    return {
        200: {
            "headers": {
                "X-Total-Count": {"description": total},
                "Link": {"description": 'The next page, rel="next", when there is one.'},
            }
        }
    }


def set_page_headers(
    request: Request, response: Response, params: PageParams, returned: int, total: int
) -> None:
    """``X-Total-Count`` and, when more follow, ``Link`` to the next page of a plain list."""
    response.headers["X-Total-Count"] = str(total)
    if params.offset + returned < total:
        following = request.url.include_query_params(
            limit=params.limit, offset=params.offset + returned
        )
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
