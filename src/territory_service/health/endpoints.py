"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from territory_service.api.problems import problem_responses
from territory_service.health.readiness import check_readiness
from territory_service.health.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Touches nothing else."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Readiness | JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    return await check_readiness(request)
