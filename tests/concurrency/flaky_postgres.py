"""A TCP proxy in front of PostgreSQL that takes the database away the ways a client meets it:
a restart (open sessions ended with FATAL 57P01, new connections answered FATAL 57P03 while the
server shuts down or starts up, refused while it is down), a connection cut without a word, or
a session failed at a chosen statement, before the server runs it or once it has. It reads the
protocol's messages to do so, so clients must connect in clear (`FlakyPostgres.url`)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from tests.concurrency.servers import free_port

# --------------------------------------------------------------------------- the wire protocol

_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


def fatal(sqlstate: str, message: str) -> bytes:
    """An ErrorResponse as PostgreSQL sends it before it closes a connection."""
    fields = b"".join(
        tag + value.encode() + b"\0"
        for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    return b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0"


ADMIN_SHUTDOWN = fatal("57P01", "terminating connection due to administrator command")
STARTING_UP = fatal("57P03", "the database system is starting up")
SHUTTING_DOWN = fatal("57P03", "the database system is shutting down")
TOO_MANY_CLIENTS = fatal("53300", "sorry, too many clients already")


async def _read_startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """The client's first message (untyped), after declining encryption as a server
    without it does."""
    while True:
        head = await reader.readexactly(8)
        (length, code) = struct.unpack("!II", head)
        packet = head + await reader.readexactly(length - 8)
        if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
            return packet
        writer.write(b"N")


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(5)
    (length,) = struct.unpack("!I", head[1:])
    return head + await reader.readexactly(length - 4)


def _strings(payload: bytes, count: int) -> list[bytes]:
    return payload.split(b"\0", count)[:count]


# --------------------------------------------------------------------------- the proxy


class Cut(enum.Enum):
    TERMINATE = "the server ends the session (FATAL 57P01)"
    SEVER = "the connection breaks without a word"


@dataclass(frozen=True)
class Trap:
    """Fail the session that runs a statement containing `statement` (after one containing
    `after` in the same transaction, if given): before it reaches the server, or, with
    `deliver`, once the server has run it and before its answer reaches the client. The server
    then stays down until `FlakyPostgres.come_back`."""

    statement: bytes
    cut: Cut
    deliver: bool = False
    after: bytes | None = None


@dataclass(eq=False)
class _Session:
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    server_reader: asyncio.StreamReader | None = None
    server_writer: asyncio.StreamWriter | None = None
    prepared: dict[bytes, bytes] = field(default_factory=dict)  # statement name -> SQL
    transaction: list[bytes] = field(default_factory=list)  # SQL run since BEGIN
    in_flight: bool = False  # a statement was sent and its answer has not come back
    cut: Cut | None = None
    cut_at_answer: Cut | None = None
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def executed(self, message: bytes) -> bytes | None:
        """The SQL a client message runs (a simple query, or the bind of a prepared one)."""
        kind, payload = message[:1], message[5:]
        if kind == b"P":
            name, sql = _strings(payload, 2)
            self.prepared[name] = sql
            return None
        if kind == b"Q":
            sql = _strings(payload, 1)[0]
        elif kind == b"B":
            sql = self.prepared.get(_strings(payload, 2)[1], b"")
        else:
            return None
        if sql.lstrip().upper().startswith(b"BEGIN"):
            self.transaction.clear()
        return sql


class FlakyPostgres:
    """A TCP proxy to PostgreSQL (`upstream`; None for a server that only refuses) that plays
    a restart, fails the session that runs a chosen statement, and stays down or comes back."""

    def __init__(self, upstream: tuple[str, int] | None) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.refusal: bytes | None = None  # what new connections are told instead of served
        self.trap: Trap | None = None
        self.sprung = asyncio.Event()
        self._sessions: set[_Session] = set()
        self._busy = asyncio.Condition()
        self._listener: socket.socket | None = None
        self._accepted: set[socket.socket] = set()  # not yet handed to a handler
        self._handlers: set[asyncio.Task[None]] = set()

    def url(self, database_url: str) -> str:
        """`database_url` through the proxy, in clear (the proxy reads the messages)."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.update_query_dict({"ssl": "disable"}).render_as_string(hide_password=False)

    def listen(self, *, refusal: bytes | None = None) -> None:
        # A socket of its own rather than `asyncio.start_server`: closing an asyncio server
        # while it accepts leaves a half-made transport behind (Python 3.11).
        self.refusal = refusal
        if self._listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            listener.setblocking(False)
            asyncio.get_running_loop().add_reader(listener, self._on_connect, listener)
            self._listener = listener

    def go_down(self) -> None:
        """Nothing listens any more: connecting is refused, as to a server that is down."""
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener)
            self._listener.close()
            self._listener = None

    def come_back(self) -> None:
        self.trap = None
        self.listen()

    async def end_sessions(self, cut: Cut) -> None:
        for session in list(self._sessions):
            session.cut = session.cut or cut
            for pump in session.pumps:
                pump.cancel()
        await asyncio.gather(*(session.ended.wait() for session in list(self._sessions)))

    async def restart_begins(self) -> None:
        """A fast shutdown, once some session waits for the answer to a statement: new
        connections are told the server is shutting down, every session ends with FATAL
        57P01."""
        async with self._busy:
            await self._busy.wait_for(lambda: any(s.in_flight for s in self._sessions))
        self.refusal = SHUTTING_DOWN
        await self.end_sessions(Cut.TERMINATE)

    async def close(self) -> None:
        self.go_down()
        await self.end_sessions(Cut.SEVER)
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for connection in self._accepted:  # its handler never started
            connection.close()

    def _on_connect(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # none waiting (BlockingIOError) or the listener closed
                return
            connection.setblocking(False)
            # Messages go on one by one: without this, each waits for the last one's ACK.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._accepted.add(connection)
            handler = asyncio.get_running_loop().create_task(self._accept(connection))
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)

    async def _accept(self, connection: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=connection)
        self._accepted.discard(connection)
        try:
            startup = await _read_startup(reader, writer)
            if self.refusal is not None or self.upstream is None:
                writer.write(self.refusal or b"")  # nothing at all: it just hangs up
                writer.close()
            else:
                await self._serve(startup, _Session(reader, writer), self.upstream)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if not writer.transport.is_closing():  # the client left, or the proxy closes
                writer.transport.abort()

    async def _serve(self, startup: bytes, session: _Session, upstream: tuple[str, int]) -> None:
        self._sessions.add(session)
        try:
            session.server_reader, session.server_writer = await asyncio.open_connection(*upstream)
            if session.cut is None:  # not ended while it connected
                session.server_writer.write(startup)
                session.pumps = [
                    asyncio.create_task(self._client_to_server(session)),
                    asyncio.create_task(self._server_to_client(session)),
                ]
                await asyncio.wait(session.pumps, return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            session.cut = session.cut or Cut.SEVER
        finally:
            for pump in session.pumps:
                pump.cancel()
            await asyncio.gather(*session.pumps, return_exceptions=True)
            self._end(session)

    def _end(self, session: _Session) -> None:
        # Between two messages: the client has read whole messages up to the end.
        if session.cut is Cut.TERMINATE:
            session.client_writer.write(ADMIN_SHUTDOWN)
            session.client_writer.close()
        elif session.cut is Cut.SEVER:
            session.client_writer.transport.abort()
        else:
            session.client_writer.close()
        # The server's session ends with its connection and rolls back what is not committed.
        if session.server_writer is not None:
            session.server_writer.transport.abort()
        self._sessions.discard(session)
        session.ended.set()

    async def _client_to_server(self, session: _Session) -> None:
        assert session.server_writer is not None
        with contextlib.suppress(asyncio.IncompleteReadError, OSError):
            while True:
                message = await _read_message(session.client_reader)
                sql = session.executed(message)
                if sql is not None:
                    if self._springs(session, sql) and await self._spring(session):
                        return
                    session.transaction.append(sql)
                    async with self._busy:
                        session.in_flight = True
                        self._busy.notify_all()
                session.server_writer.write(message)
                await session.server_writer.drain()

    def _springs(self, session: _Session, sql: bytes) -> bool:
        trap = self.trap
        return (
            trap is not None
            and trap.statement in sql
            and (trap.after is None or any(trap.after in done for done in session.transaction))
        )

    async def _spring(self, session: _Session) -> bool:
        """The database goes away: the trapped session fails, now (True) or at its answer;
        the others end, and nothing listens."""
        trap = self.trap
        assert trap is not None
        self.trap = None
        self.sprung.set()
        self.go_down()
        others = [other for other in self._sessions if other is not session]
        for other in others:
            other.cut = other.cut or trap.cut
            for pump in other.pumps:
                pump.cancel()
        if trap.deliver:
            session.cut_at_answer = trap.cut
            return False
        session.cut = trap.cut
        return True

    async def _server_to_client(self, session: _Session) -> None:
        assert session.server_reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, OSError):
            while True:
                message = await _read_message(session.server_reader)
                kind = message[:1]
                if kind in (b"C", b"E") and session.cut_at_answer is not None:
                    session.cut = session.cut_at_answer  # the server has run it
                    return
                if kind == b"Z":  # ready for a query: no answer outstanding
                    session.in_flight = False
                session.client_writer.write(message)
                await session.client_writer.drain()
