"""`territory-service serve | migrate | demo | openapi`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from territory_service.config import Settings, get_settings
from territory_service.logs import configure_logging

logger = logging.getLogger("territory_service")


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "territory_service.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
    )
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from territory_service.migrate import upgrade_to_head

    upgrade_to_head(settings.database_url)
    logger.info("database schema at head")
    return 0


def _demo(settings: Settings, _args: argparse.Namespace) -> int:
    from territory_service.db import create_engine, create_session_factory
    from territory_service.demo.loader import load_demo_data

    async def load() -> None:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                await load_demo_data(session)
        finally:
            await engine.dispose()

    asyncio.run(load())
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
    commands.add_parser("migrate", help="upgrade the database schema to head").set_defaults(
        run=_migrate
    )
    commands.add_parser("demo", help="load the demo data into an empty database").set_defaults(
        run=_demo
    )
    openapi = commands.add_parser("openapi", help="write (or --check) the OpenAPI document")
    openapi.add_argument("--check", action="store_true", help="fail if the file is stale")
    openapi.add_argument("--path", type=Path, default=DOCUMENT_PATH)
    openapi.set_defaults(run=_openapi)

    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    sys.exit(args.run(settings, args))
