"""Real `territory-service serve` processes sharing one PostgreSQL database, as replicas behind a
load balancer would: the tests that race them talk HTTP to separate processes, each with its own
connection pool, so nothing is shared but the database."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from territory_service.api_keys.schemas import ApiKeyCreate
from territory_service.api_keys.service import issue_key
from territory_service.config import Settings
from territory_service.db import create_engine, create_session_factory
from territory_service.security.scopes import Scope

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class Server:
    """One `territory-service serve` process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A port free now. Under pytest-xdist each worker takes only ports of its own residue
    (port % workers == worker), so two workers starting servers at once never pick the same."""
    worker, workers = _xdist_worker()
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        # Linux hands bind() odd ports only: step to the next port of this worker's residue.
        port += (worker - port) % workers
        if port <= 65535 and _is_free(port):
            return port
    raise RuntimeError("no free port found")


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _xdist_worker() -> tuple[int, int]:
    """(this worker's index, how many workers); (0, 1) outside pytest-xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if name.startswith("gw") and name[2:].isdigit() and count.isdigit() and int(count) > 0:
        return int(name[2:]) % int(count), int(count)
    return 0, 1


def start_server(database_url: str, log_dir: Path, **settings: Any) -> Server:
    """Start a server on a free port; `settings` become environment variables (DB_POOL_SIZE=...)."""
    port = free_port()
    environment = dict(os.environ)
    environment.update(
        {
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
    )
    environment.update({name.upper(): str(value) for name, value in settings.items()})
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        # The working directory holds no `.env`, so only the environment above configures it.
        process = subprocess.Popen(
            [sys.executable, "-m", "territory_service", "serve"],
            env=environment,
            cwd=log_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)


async def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5.0) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"server {server.base_url} exited with {server.process.returncode}:\n"
                    f"{server.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {server.base_url} not ready:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.asynccontextmanager
async def running_servers(
    database_url: str, count: int, log_dir: Path, **settings: Any
) -> AsyncIterator[list[Server]]:
    """`count` servers on one database, ready; stopped on the way out, whatever happened."""
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(start_server(database_url, log_dir, **settings))
        await asyncio.gather(*(wait_until_ready(server) for server in servers))
        yield servers
    finally:
        for server in servers:
            stop_server(server)


async def issue_admin_key(database_url: str) -> str:
    """An admin API key, issued straight through the service; returns its secret."""
    engine = create_engine(Settings(database_url=database_url, db_pool_size=1))
    try:
        async with create_session_factory(engine)() as session:
            _, secret = await issue_key(
                session,
                data=ApiKeyCreate(name="concurrency test", scopes=[Scope.ADMIN]),
                created_by=None,
            )
    finally:
        await engine.dispose()
    return secret


class RoundRobin:
    """HTTP clients for several servers, handing them out in turn, as a load balancer would."""

    def __init__(self, servers: list[Server], key: str, *, connections: int) -> None:
        self.clients = [
            httpx.AsyncClient(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(60.0),
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            )
            for server in servers
        ]
        self._turn = itertools.cycle(range(len(self.clients)))

    def next(self) -> httpx.AsyncClient:
        return self.clients[next(self._turn)]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
