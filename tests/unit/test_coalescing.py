"""`Coalescer`: shared rounds that are as fresh as a query of one's own."""

from __future__ import annotations

import asyncio
import contextvars
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territory_service.coalescing import Coalescer, ReadsStopped


class Store:
    """A database stand-in: `version` moves on every write; a fetch sees the version at its
    start and takes a few event-loop turns, as a query does."""

    def __init__(self, turns: int = 3) -> None:
        self.version = 0
        self.turns = turns
        self.fetched: list[frozenset[str]] = []

    async def fetch(self, keys: frozenset[str]) -> dict[str, int]:
        seen = self.version
        self.fetched.append(keys)
        for _ in range(self.turns):
            await asyncio.sleep(0)
        return dict.fromkeys(keys, seen)


# Each step: a caller that reads a key, or a write; then how many loop turns pass.
steps = st.lists(
    st.tuples(st.one_of(st.sampled_from("abc"), st.none()), st.integers(0, 4)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, turns=st.integers(0, 5))
def test_every_caller_sees_what_was_written_before_it_asked(
    steps: list[tuple[str | None, int]], turns: int
) -> None:
    async def run() -> None:
        store = Store(turns)
        reads = Coalescer(store.fetch)
        calls: list[tuple[str, int, asyncio.Task[dict[str, int]]]] = []
        for key, pause in steps:
            if key is None:
                store.version += 1
            else:
                calls.append((key, store.version, asyncio.create_task(reads.read(key))))
            for _ in range(pause):
                await asyncio.sleep(0)
        for key, version_when_asked, task in calls:
            answer = await task
            assert answer[key] >= version_when_asked, (key, version_when_asked, answer)
        assert reads.rounds == len(store.fetched) <= len(calls)

    asyncio.run(run())


async def test_callers_that_ask_while_a_round_runs_share_the_next_one() -> None:
    store = Store(turns=5)
    reads = Coalescer(store.fetch)
    first = asyncio.create_task(reads.read("a"))
    await asyncio.sleep(0)  # the first round is running now
    others = [asyncio.create_task(reads.read(key)) for key in "abcabc"]

    answers = await asyncio.gather(first, *others)

    assert store.fetched == [frozenset("a"), frozenset("abc")]
    assert [answer.keys() for answer in answers[1:]] == [set("abc")] * 6


async def test_a_failed_round_fails_its_callers_only() -> None:
    store = Store()
    failures = iter([True, False])

    async def fetch(keys: frozenset[str]) -> dict[str, int]:
        answer = await store.fetch(keys)
        if next(failures):
            raise ConnectionError("gone")
        return answer

    reads = Coalescer(fetch)
    failed = [asyncio.create_task(reads.read(key)) for key in "ab"]
    await asyncio.sleep(0)
    later = asyncio.create_task(reads.read("c"))

    for task in failed:
        with pytest.raises(ConnectionError):
            await task
    assert await later == {"c": 0}


async def test_a_cancelled_caller_leaves_the_round_to_the_others() -> None:
    store = Store(turns=5)
    reads = Coalescer(store.fetch)
    callers = [asyncio.create_task(reads.read(key)) for key in "ab"]
    await asyncio.sleep(0)
    callers[0].cancel()

    assert await callers[1] == {"a": 0, "b": 0}
    assert callers[0].cancelled()
    assert await reads.read("c") == {"c": 0}  # and the next round runs


async def test_rounds_interleave_with_writes_under_random_schedules() -> None:
    store = Store(turns=2)
    reads = Coalescer(store.fetch)
    rng = random.Random(7)

    async def caller() -> None:
        for _ in range(50):
            asked = store.version
            assert (await reads.read("k"))["k"] >= asked
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)

    async def writer() -> None:
        for _ in range(200):
            store.version += 1
            await asyncio.sleep(0)

    await asyncio.gather(writer(), *(caller() for _ in range(16)))
    assert reads.rounds < 16 * 50  # shared


async def test_callers_of_a_stopped_runner_get_an_error_and_the_next_caller_a_new_runner() -> None:
    started = asyncio.Event()

    async def fetch(keys: frozenset[str]) -> dict[str, int]:
        if not started.is_set():
            started.set()
            await asyncio.sleep(3600)  # the first round hangs until cancelled
        return dict.fromkeys(keys, 0)

    reads = Coalescer(fetch)
    waiting = [asyncio.create_task(reads.read(key)) for key in "ab"]
    await started.wait()
    later = asyncio.create_task(reads.read("c"))  # gathered for the next round
    await asyncio.sleep(0)
    runner = next(t for t in asyncio.all_tasks() if t.get_name() == "coalesced-reads")
    runner.cancel()

    for task in [*waiting, later]:
        with pytest.raises(ReadsStopped):
            await task
    assert await reads.read("d") == {"d": 0}  # a new runner serves the next caller


async def test_a_fetch_that_reads_its_own_coalescer_fails_instead_of_waiting_forever() -> None:
    reads: Coalescer[str, int]

    async def fetch(_keys: frozenset[str]) -> int:
        return await reads.read("again")

    reads = Coalescer(fetch)
    with pytest.raises(RuntimeError, match="its own Coalescer"):
        await reads.read("a")


async def test_the_runner_does_not_carry_the_first_callers_context() -> None:
    asked_by: contextvars.ContextVar[str] = contextvars.ContextVar("asked_by", default="nobody")
    seen: list[str] = []

    async def fetch(_keys: frozenset[str]) -> int:
        seen.append(asked_by.get())
        return 0

    reads = Coalescer(fetch)

    async def caller(name: str) -> int:
        asked_by.set(name)
        return await reads.read(name)

    await asyncio.gather(caller("first"), caller("second"))
    assert seen == ["nobody"]
