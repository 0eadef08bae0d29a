"""Writers that commit late, on purpose: a trigger makes a transaction whose ownership event
carries the reason `HELD` wait, after the event took its id and before it can commit, at a gate
(an advisory lock) the test holds closed. Meanwhile other writers take larger ids and commit,
and a feed consumer can read past them; once the gate opens, the held writers commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

GATE = 7_240_917  # the advisory lock's key
HELD = "迟到的提交"
_TRIGGER = [
    f"""CREATE FUNCTION wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock_shared({GATE});
        RETURN NEW;
    END $$""",
    f"""CREATE TRIGGER wait_at_gate AFTER INSERT ON ownership_events
    FOR EACH ROW WHEN (NEW.reason = '{HELD}') EXECUTE FUNCTION wait_at_gate()""",
]


class Gate:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.closed = True

    async def writers_waiting(self) -> int:
        waiting = await self.connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = :gate AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"
            ),
            {"gate": GATE},
        )
        return int(waiting or 0)

    async def wait_for_writers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not await self.writers_waiting():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def ids_taken(self) -> int:
        """The largest event id handed out so far, committed or not."""
        taken = await self.connection.scalar(
            text(
                "SELECT pg_sequence_last_value("
                "pg_get_serial_sequence('ownership_events', 'id')::regclass)"
            )
        )
        return int(taken or 0)

    async def open(self) -> None:
        if self.closed:
            await self.connection.execute(text("SELECT pg_advisory_unlock(:gate)"), {"gate": GATE})
            self.closed = False


@contextlib.asynccontextmanager
async def closed_gate(database_url: str) -> AsyncIterator[Gate]:
    """Install the trigger; the gate is closed inside the block and open after it."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in _TRIGGER:
                await connection.execute(text(statement))
            await connection.execute(text("SELECT pg_advisory_lock(:gate)"), {"gate": GATE})
            gate = Gate(connection)
            try:
                yield gate
            finally:
                await gate.open()
    finally:
        await engine.dispose()


async def open_once_read_past(gate: Gate, seen: list[dict[str, Any]], *, timeout: float) -> bool:
    """When a writer waits at the gate, wait until the consumer (appending to `seen`) has read
    an event with a larger id than any taken then, and open the gate: the held events commit
    after the consumer read past them. False, the gate opened all the same, if either wait
    took longer than `timeout` seconds."""
    try:
        if not await gate.wait_for_writers(timeout):
            return False
        taken = await gate.ids_taken()
        deadline = time.monotonic() + timeout
        while not any(event["id"] > taken for event in seen):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True
    finally:
        await gate.open()
