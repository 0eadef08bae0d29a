"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service import __version__
from territory_service.api.body_limit import BodyLimitMiddleware
from territory_service.api.middleware import RequestContextMiddleware
from territory_service.api.problems import install_problem_handlers
from territory_service.api_keys.endpoints import router as api_keys_router
from territory_service.api_keys.request_reads import request_reads
from territory_service.audit.endpoints import router as audit_router
from territory_service.audit.middleware import AuditMiddleware
from territory_service.config import Settings, get_settings
from territory_service.conflicts.endpoints import router as conflicts_router
from territory_service.customers.endpoints import router as customers_router
from territory_service.db import create_engine, create_session_factory, utcnow
from territory_service.events.endpoints import router as events_router
from territory_service.health.endpoints import router as health_router
from territory_service.idempotency.middleware import IdempotencyMiddleware
from territory_service.jobs import service as jobs
from territory_service.jobs.endpoints import router as jobs_router
from territory_service.jobs.worker import Worker
from territory_service.openapi import install_openapi
from territory_service.owners.endpoints import router as owners_router
from territory_service.ownership.endpoints import router as ownership_router
from territory_service.ownership.previews import Previews
from territory_service.pool.endpoints import router as pool_router
from territory_service.pool.reclaim import reclaim_on_schedule
from territory_service.rulesets.endpoints import router as rulesets_router
from territory_service.rulesets.endpoints import simulations_router
from territory_service.territories.endpoints import router as territories_router
from territory_service.transfers.endpoints import router as transfers_router

DESCRIPTION = """
The single source of truth for **who owns each CRM customer**.

Every operation but the probes needs an API key (`Authorization: Bearer tsk_…`) with the
scopes it lists; a key confined to territories sees only what lies in them (other ids answer 404).

Errors are RFC 9457 `application/problem+json` documents with a stable `type` per error kind.
Lists use cursor pagination (`limit`, `cursor`, `next_cursor`). Every resource has a `version`,
sent as the `ETag`; writes accept `If-Match` and answer 412 when the resource changed since.
"""


ROUTERS = (
    customers_router,
    ownership_router,
    transfers_router,
    pool_router,
    rulesets_router,
    simulations_router,
    jobs_router,
    owners_router,
    territories_router,
    conflicts_router,
    events_router,
    api_keys_router,
    audit_router,
    health_router,
)


def _operation_id(route: APIRoute) -> str:
    # The endpoint function's name: `list_customers`, `create_owner`, ... read well in clients.
    return route.name


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    """The ASGI app. Given an `engine` (tests), it uses it and leaves disposing of it to them."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.engine = create_engine(settings) if engine is None else engine
        app.state.session_factory = create_session_factory(app.state.engine)
        app.state.request_reads = request_reads(app.state.engine)
        app.state.previews = Previews(app.state.session_factory, ttl=settings.preview_cache_seconds)
        # Workers take pieces of jobs; several per process apply a re-division's pieces side by
        # side (the database does the work). SQLite has one writer: one worker.
        count = 1 if settings.is_sqlite else settings.job_workers
        app.state.workers = workers = [
            Worker(app.state.session_factory, settings) for _ in range(count)
        ]
        app.state.worker = workers[0]
        for worker in workers:
            jobs.register(worker)
        background = [
            asyncio.create_task(worker.run(), name=f"job-worker-{n}")
            for n, worker in enumerate(workers)
        ]
        if settings.pool_reclaim_interval_seconds > 0:
            background.append(
                asyncio.create_task(
                    reclaim_on_schedule(
                        app.state.session_factory,
                        interval=settings.pool_reclaim_interval_seconds,
                        clock=lambda: app.state.clock(),
                    ),
                    name="pool-reclaim-schedule",
                )
            )
        try:
            yield
        finally:
            for worker in workers:  # each hands back the piece in hand at once
                jobs.unregister(worker)
                await worker.stop()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own_engine:
                await app.state.engine.dispose()

    app = FastAPI(
        title="Territory Service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.clock = utcnow  # what time it is for the pool's clocks; tests move it
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Outermost last: request context, then idempotency keys (replays carry a request id and
    # are not audited, as they change nothing), then audit, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(IdempotencyMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware)
    install_openapi(app)
    return app
