"""Pages of list calls and iterators that follow their cursors.

A list call answers ``{"results": [...], "cursor": str | null}``; ``cursor`` is null on the last page
(contract, "Common rules"). Iterating a page goes on to the next pages as needed::

    for meeting in client.meetings.list(limit=100):      # every meeting, 100 per request
        ...
    page = client.meetings.list(limit=10)                # one page: page.results, page.cursor
    if page.has_next_page():
        page = page.next_page()

    async for meeting in aclient.meetings.list():        # the same with AsyncHerewith
        ...
    page = await aclient.meetings.list(limit=10)         # awaiting gives the first page
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SyncPage(Generic[T]):
    """One page: ``results`` (models) and ``cursor`` (None on the last page). Iterating it yields the
    items of this page and of every following page."""

    def __init__(self, results: list[T], cursor: str | None, fetch: Callable[[str], SyncPage[T]]) -> None:
        self.results = results
        self.cursor = cursor
        self._fetch = fetch

    def has_next_page(self) -> bool:
        return self.cursor is not None

    def next_page(self) -> SyncPage[T]:
        """The following page (one request); ``StopIteration``-free: raises ValueError on the last page."""
        if self.cursor is None:
            raise ValueError("this is the last page (cursor is null)")
        return self._fetch(self.cursor)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        """This page and the following ones, one request each."""
        page: SyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.results

    def __repr__(self) -> str:
        return f"SyncPage(results=<{len(self.results)} items>, cursor={self.cursor!r})"


class AsyncPage(Generic[T]):
    """One page of an async list call; ``async for`` over it yields the items of every following page."""

    def __init__(self, results: list[T], cursor: str | None, fetch: Callable[[str], Awaitable[AsyncPage[T]]]) -> None:
        self.results = results
        self.cursor = cursor
        self._fetch = fetch

    def has_next_page(self) -> bool:
        return self.cursor is not None

    async def next_page(self) -> AsyncPage[T]:
        if self.cursor is None:
            raise ValueError("this is the last page (cursor is null)")
        return await self._fetch(self.cursor)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        page: AsyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.next_page()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.results:
                yield item

    def __repr__(self) -> str:
        return f"AsyncPage(results=<{len(self.results)} items>, cursor={self.cursor!r})"


class AsyncPaginator(Generic[T]):
    """What an async list call returns: ``await`` it for the first :class:`AsyncPage`, or ``async for`` over
    it for every item of every page."""

    def __init__(self, first: Callable[[], Awaitable[AsyncPage[T]]]) -> None:
        self._first = first

    def __await__(self) -> Generator[Any, None, AsyncPage[T]]:
        return self._first().__await__()

    async def __aiter__(self) -> AsyncIterator[T]:
        page = await self._first()
        async for item in page:
            yield item
