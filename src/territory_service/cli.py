"""`territory-service serve | work | migrate | demo | create-key | openapi`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.config import Settings, get_settings
from territory_service.logs import configure_logging
from territory_service.security.scopes import Scope

T = TypeVar("T")

logger = logging.getLogger("territory_service")


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from territory_service.heap import settle_heap
    from territory_service.main import create_app

    app = create_app(settings)
    settle_heap()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
    )
    return 0


def _work(settings: Settings, _args: argparse.Namespace) -> int:
    """Take pieces of jobs until SIGTERM or SIGINT, without serving HTTP: a replica that only
    carries long work (a re-division shared by more processes, or kept off the API's)."""
    import signal

    from territory_service.db import create_engine, create_session_factory
    from territory_service.heap import settle_heap
    from territory_service.jobs.worker import Worker
    from territory_service.main import create_app

    create_app(settings)  # registers every kind of job's steps
    settle_heap()

    async def work() -> None:
        engine = create_engine(settings)
        factory = create_session_factory(engine)
        workers = [Worker(factory, settings) for _ in range(settings.job_workers)]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        try:
            await stop.wait()
        finally:
            for worker in workers:  # each hands back the piece in hand at once
                await worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await engine.dispose()

    asyncio.run(work())
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from territory_service.migrate import upgrade_to_head

    upgrade_to_head(settings.database_url)
    logger.info("database schema at head")
    return 0


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from territory_service.db import create_engine, create_session_factory

    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()


def _demo(settings: Settings, _args: argparse.Namespace) -> int:
    from territory_service.demo.admin_key import ensure_demo_admin_key
    from territory_service.demo.loader import flag_demo_duplicates, load_demo_data
    from territory_service.rulesets.activation import re_divide_now

    async def load(session: AsyncSession) -> tuple[str, bool]:
        if await load_demo_data(session):
            # The demo's rule set is active: resolve every customer, as an activation would.
            factory = async_sessionmaker(session.bind, expire_on_commit=False)
            await re_divide_now(factory, settings, reason="demo rule set")
            await flag_demo_duplicates(session)
        return await ensure_demo_admin_key(session, settings.demo_key_file)

    secret, new = asyncio.run(_with_session(settings, load))
    url = f"http://{settings.host}:{settings.port}"
    print(  # noqa: T201 (the command's output)
        f"Demo admin key ({'new' if new else 'kept'}) in {settings.demo_key_file}:\n  {secret}\n"
        f"Try:\n  curl -s -H 'Authorization: Bearer {secret}' '{url}/v1/customers?limit=2'"
    )
    return 0


def _create_key(settings: Settings, args: argparse.Namespace) -> int:
    from territory_service.api_keys import service as api_keys
    from territory_service.api_keys.schemas import ApiKeyCreate

    data = ApiKeyCreate(
        name=args.name,
        scopes=args.scope,
        territory_ids=args.territory or None,
        expires_at=args.expires_at,
    )

    async def issue(session: AsyncSession) -> str:
        _, secret = await api_keys.issue_key(session, data=data, created_by=None)
        return secret

    print(asyncio.run(_with_session(settings, issue)))  # noqa: T201 (the command's output)
    return 0


def _openapi(_settings: Settings, args: argparse.Namespace) -> int:
    from territory_service.main import create_app
    from territory_service.openapi import build_openapi, render

    text = render(build_openapi(create_app()))
    path: Path = args.path
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            logger.error("%s is stale: run `make openapi` and commit it", path)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    logger.info("wrote %s", path)
    return 0


def main(argv: list[str] | None = None) -> None:
    from territory_service.openapi import DOCUMENT_PATH

    parser = argparse.ArgumentParser(prog="territory-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the HTTP API (HOST, PORT, DATABASE_URL)").set_defaults(
        run=_serve
    )
    commands.add_parser(
        "work", help="carry on long jobs without serving HTTP (DATABASE_URL, JOB_WORKERS)"
    ).set_defaults(run=_work)
    commands.add_parser("migrate", help="upgrade the database schema to head").set_defaults(
        run=_migrate
    )
    commands.add_parser("demo", help="load the demo data into an empty database").set_defaults(
        run=_demo
    )
    create_key = commands.add_parser("create-key", help="issue an API key and print it")
    create_key.add_argument("--name", required=True)
    create_key.add_argument(
        "--scope", action="append", required=True, type=Scope, help="repeat for several"
    )
    create_key.add_argument(
        "--territory", action="append", type=uuid.UUID, help="confine the key (repeatable)"
    )
    create_key.add_argument("--expires-at", type=dt.datetime.fromisoformat, default=None)
    create_key.set_defaults(run=_create_key)
    openapi = commands.add_parser("openapi", help="write (or --check) the OpenAPI document")
    openapi.add_argument("--check", action="store_true", help="fail if the file is stale")
    openapi.add_argument("--path", type=Path, default=DOCUMENT_PATH)
    openapi.set_defaults(run=_openapi)

    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    sys.exit(args.run(settings, args))
