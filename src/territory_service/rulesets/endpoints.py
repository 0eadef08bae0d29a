import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from territory_service.api.authentication import RulesRead, RulesWrite
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
    set_location,
)
from territory_service.api.problems import problem_responses
from territory_service.audit.middleware import mark_unchanging
from territory_service.jobs.schemas import Job
from territory_service.rulesets import activation, service, simulation
from territory_service.rulesets.models import RuleSetState
from territory_service.rulesets.schemas import (
    Rule,
    RuleCreate,
    RulePage,
    RuleSet,
    RuleSetCreate,
    RuleSetPage,
    RuleSetUpdate,
    RuleUpdate,
    SimulationMove,
    SimulationMovePage,
    ValidationReport,
)
from territory_service.schemas import UTCTimestamp

router = APIRouter(prefix="/v1/rulesets", tags=["rule sets"])

# The scope parameters below are checked by their dependency; the endpoints need no value.
# ruff: noqa: ARG001


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RuleSet,
    responses=problem_responses(409),
)
async def create_ruleset(
    body: RuleSetCreate, session: SessionDep, principal: RulesWrite, response: Response
) -> RuleSet:
    """Create a draft rule set, empty or (`copy_active`) a copy of the active one's rules."""
    ruleset = await service.create_ruleset(session, data=body)
    set_location(response, f"/v1/rulesets/{ruleset.id}", ruleset.version)
    return RuleSet.model_validate(ruleset)


@router.get("", response_model=RuleSetPage, responses=problem_responses())
async def list_rulesets(
    session: SessionDep,
    principal: RulesRead,
    state: Annotated[
        RuleSetState | None, Query(description="Only rule sets in this state.")
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> RuleSetPage:
    """List rule sets, oldest first."""
    page = await service.list_rulesets(session, state=state, limit=limit, cursor=cursor)
    return RuleSetPage(
        items=[RuleSet.model_validate(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/{ruleset_id}", response_model=RuleSet, responses=problem_responses(404))
async def get_ruleset(
    ruleset_id: uuid.UUID, session: SessionDep, principal: RulesRead, response: Response
) -> RuleSet:
    """Get one rule set."""
    ruleset = await service.get_ruleset(session, ruleset_id=ruleset_id)
    set_etag(response, ruleset.version)
    return RuleSet.model_validate(ruleset)


@router.patch(
    "/{ruleset_id}", response_model=RuleSet, responses=problem_responses(400, 404, 409, 412)
)
async def update_ruleset(
    ruleset_id: uuid.UUID,
    body: RuleSetUpdate,
    session: SessionDep,
    principal: RulesWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> RuleSet:
    """Change a draft rule set (409 for an active or archived one)."""
    ruleset = await service.update_ruleset(
        session, ruleset_id=ruleset_id, data=body, expected=expected
    )
    set_etag(response, ruleset.version)
    return RuleSet.model_validate(ruleset)


@router.delete(
    "/{ruleset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 412),
)
async def delete_ruleset(
    ruleset_id: uuid.UUID, session: SessionDep, principal: RulesWrite, expected: ExpectedVersionDep
) -> None:
    """Delete a draft rule set with its rules."""
    await service.delete_ruleset(session, ruleset_id=ruleset_id, expected=expected)


@router.post(
    "/{ruleset_id}/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=Rule,
    responses=problem_responses(404, 409),
)
async def create_rule(
    ruleset_id: uuid.UUID,
    body: RuleCreate,
    session: SessionDep,
    principal: RulesWrite,
    response: Response,
) -> Rule:
    """Add a rule to a draft. The condition is checked: unknown fields, operators that do not
    fit the field, and values that do not fit either answer 422 pointing at the predicate."""
    rule = await service.create_rule(session, ruleset_id=ruleset_id, data=body)
    set_location(response, f"/v1/rulesets/{ruleset_id}/rules/{rule.id}", rule.version)
    return Rule.model_validate(rule)


@router.get("/{ruleset_id}/rules", response_model=RulePage, responses=problem_responses(404))
async def list_rules(
    ruleset_id: uuid.UUID,
    session: SessionDep,
    principal: RulesRead,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> RulePage:
    """List a rule set's rules."""
    page = await service.list_rules(session, ruleset_id=ruleset_id, limit=limit, cursor=cursor)
    return RulePage(
        items=[Rule.model_validate(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/{ruleset_id}/rules/{rule_id}", response_model=Rule, responses=problem_responses(404))
async def get_rule(
    ruleset_id: uuid.UUID,
    rule_id: uuid.UUID,
    session: SessionDep,
    principal: RulesRead,
    response: Response,
) -> Rule:
    """Get one rule."""
    rule = await service.get_rule(session, ruleset_id=ruleset_id, rule_id=rule_id)
    set_etag(response, rule.version)
    return Rule.model_validate(rule)


@router.patch(
    "/{ruleset_id}/rules/{rule_id}",
    response_model=Rule,
    responses=problem_responses(400, 404, 409, 412),
)
async def update_rule(
    ruleset_id: uuid.UUID,
    rule_id: uuid.UUID,
    body: RuleUpdate,
    session: SessionDep,
    principal: RulesWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Rule:
    """Change a rule of a draft."""
    rule = await service.update_rule(
        session, ruleset_id=ruleset_id, rule_id=rule_id, data=body, expected=expected
    )
    set_etag(response, rule.version)
    return Rule.model_validate(rule)


@router.delete(
    "/{ruleset_id}/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 412),
)
async def delete_rule(
    ruleset_id: uuid.UUID,
    rule_id: uuid.UUID,
    session: SessionDep,
    principal: RulesWrite,
    expected: ExpectedVersionDep,
) -> None:
    """Remove a rule from a draft."""
    await service.delete_rule(session, ruleset_id=ruleset_id, rule_id=rule_id, expected=expected)


@router.post(
    "/{ruleset_id}/validate",
    response_model=ValidationReport,
    responses=problem_responses(404),
    dependencies=[Depends(mark_unchanging)],
)
async def validate_ruleset(
    ruleset_id: uuid.UUID, session: SessionDep, principal: RulesRead
) -> ValidationReport:
    """Static checks, changing nothing: rules that can never match, rules a higher-priority
    rule always beats, same-priority rules with different targets that can both match (with an
    example customer; an error under tie policy `reject`), inactive named owners and target
    territories without active members. Activation refuses a rule set with errors."""
    return await service.validate_ruleset(session, ruleset_id=ruleset_id)


@router.post(
    "/{ruleset_id}/activate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Job,
    responses=problem_responses(404, 409),
)
async def activate_ruleset(
    ruleset_id: uuid.UUID,
    session: SessionDep,
    principal: RulesWrite,
    response: Response,
    effective_at: Annotated[
        UTCTimestamp | None,
        Query(
            description="When the rule set becomes active and the re-division starts, on "
            "whichever replica is alive then (with its offset; must lie ahead). Until then the "
            "rule set is `scheduled` and its job `queued`; cancelling the job makes it a draft "
            "again. Left out: at once.",
            examples=["2027-01-01T00:00:00+08:00"],
        ),
    ] = None,
) -> Job:
    """Make a draft the active rule set (the active one is archived) and re-divide every
    customer as a job: 202 with `Location: /v1/jobs/{id}`. With `effective_at`, both happen
    then: the rule set is `scheduled` until that time, and cancelling the job makes it a draft
    again. One activation at a time, scheduled ones included (409 otherwise); activating the
    active set again re-divides and changes nothing."""
    job = await activation.start_activation(
        session, ruleset_id=ruleset_id, principal=principal, effective_at=effective_at
    )
    set_location(response, f"/v1/jobs/{job.id}", job.version)
    return Job.of(job)


@router.post(
    "/{ruleset_id}/simulate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Job,
    responses=problem_responses(404),
)
async def simulate_ruleset(
    ruleset_id: uuid.UUID,
    session: SessionDep,
    principal: RulesWrite,
    response: Response,
) -> Job:
    """Run a rule set (any state) against the whole pool without changing anything, as a job:
    202 with `Location: /v1/jobs/{id}`. The job's `result` says how many customers would move
    and change territory, the load per owner and per territory before and after, and the
    conflicts it would raise by kind; the moves themselves are at
    `GET /v1/simulations/{job_id}/moves`. Simulations may run side by side."""
    job = await simulation.start_simulation(session, ruleset_id=ruleset_id, principal=principal)
    set_location(response, f"/v1/jobs/{job.id}", job.version)
    return Job.of(job)


simulations_router = APIRouter(prefix="/v1/simulations", tags=["rule sets"])


@simulations_router.get(
    "/{job_id}/moves", response_model=SimulationMovePage, responses=problem_responses(404)
)
async def list_simulation_moves(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: RulesRead,
    territory_id: Annotated[
        uuid.UUID | None, Query(description="Only moves into or out of this territory.")
    ] = None,
    owner_id: Annotated[
        uuid.UUID | None, Query(description="Only moves to or from this owner.")
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> SimulationMovePage:
    """The customers a simulation would move, in customer id order: from where, to where, and
    the deciding rule. Filled while the simulation job runs."""
    page = await simulation.list_moves(
        session,
        job_id=job_id,
        territory_id=territory_id,
        owner_id=owner_id,
        limit=limit,
        cursor=cursor,
    )
    return SimulationMovePage(
        items=[SimulationMove.model_validate(m) for m in page.items], next_cursor=page.next_cursor
    )
