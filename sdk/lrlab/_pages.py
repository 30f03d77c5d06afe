"""Following paged listings (items, total, next_offset) to their end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lrlab.models import Page

T = TypeVar("T")


def iterate(fetch: Callable[[int], Page[T]]) -> Iterator[T]:
    """Every item of a listing; `fetch(offset)` returns one page."""
    offset: int | None = 0
    while offset is not None:
        page = fetch(offset)
        yield from page.items
        offset = page.next_offset if page.items else None


def page_params(status: str | None, limit: int | None, offset: int) -> dict[str, Any]:
    """Query parameters of a listing: offset, and limit and status when given."""
    params: dict[str, Any] = {"offset": offset}
    if limit is not None:
        params["limit"] = limit
    if status is not None:
        params["status"] = status
    return params
