"""Reads that concurrent requests share without giving up freshness.

A busy replica asks the database the same small questions for many requests at once: is this
API key valid, which rule set is active. A `Coalescer` answers them in rounds: one query serves
every request that asked while the previous query ran. A caller only ever waits for a round that
starts after it asked, so it sees everything committed before it asked, exactly as a query of its
own would: a revoked key or a new active rule set holds from the next request on, on every
replica. Only the number of queries changes: one per round instead of one per request.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class _Round(Generic[K, R]):
    __slots__ = ("keys", "answer")

    def __init__(self) -> None:
        self.keys: set[K] = set()
        self.answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Nobody may be left to read a failure (every caller cancelled): no warning for that.
        self.answer.add_done_callback(_consume_failure)


def _consume_failure(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()


class Coalescer(Generic[K, R]):
    """Runs `fetch(keys)` for the keys asked since the previous round began, one round at a
    time; every caller of a round gets the whole answer (a failure included) and picks its part.

    Bound to the event loop it is first used on; make one per application (in its lifespan).
    """

    def __init__(self, fetch: Callable[[frozenset[K]], Awaitable[R]]) -> None:
        self._fetch = fetch
        self._gathering: _Round[K, R] | None = None  # not started: later callers join it
        self._runner: asyncio.Task[None] | None = None
        self.rounds = 0  # how many fetches ran, for tests and metrics

    async def read(self, key: K) -> R:
        runner = self._runner
        if runner is not None and runner is asyncio.current_task():
            raise RuntimeError("a fetch may not read from its own Coalescer: it would wait forever")
        gathering = self._gathering
        if gathering is None:
            gathering = self._gathering = _Round()
        gathering.keys.add(key)  # before the runner may start, even eagerly
        if runner is None or runner.done():
            # A context of its own: the runner outlives the request that started it, and its
            # logs must not carry that request's id.
            self._runner = asyncio.create_task(
                self._run(), name="coalesced-reads", context=contextvars.Context()
            )
        # A caller that is cancelled leaves the round to the others.
        return await asyncio.shield(gathering.answer)

    async def _run(self) -> None:
        current = None
        try:
            while (current := self._gathering) is not None:
                self._gathering = None  # from here on, callers wait for the next round
                self.rounds += 1
                try:
                    answer = await self._fetch(frozenset(current.keys))
                except Exception as exc:
                    current.answer.set_exception(exc)
                else:
                    current.answer.set_result(answer)
        finally:
            # Only when cancelled (the loop is closing) or when the fetch raised something that
            # is not an Exception: fail what is left with an error the callers can answer with.
            for left in (current, self._gathering):
                if left is not None and not left.answer.done():
                    left.answer.set_exception(ReadsStopped())
            self._gathering = None
            self._runner = None


class ReadsStopped(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the shared reads stopped before answering")
