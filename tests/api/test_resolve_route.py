"""`POST /v1/resolve` goes through `DirectRoute`: it must answer exactly as FastAPI's own handler
would for the same declaration, and see an activation from the next request on."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message

from territory_service.api.authentication import CustomersRead
from territory_service.api.direct_route import DirectRoute
from territory_service.api.problems import problem_responses
from territory_service.audit.middleware import mark_unchanging
from territory_service.audit.models import AuditEntry
from territory_service.config import Settings
from territory_service.main import create_app
from territory_service.ownership.endpoints import ResolveRequest, resolve_customer
from territory_service.ownership.schemas import Decision
from territory_service.security.scopes import Scope
from tests.api.helpers import activate, answering_late
from tests.conftest import KeyMaker

TWIN = "/twin/resolve"

FIELDS = ["name", "province", "city", "industry", "employees", "annual_revenue", "tier", "tags"]
VALUES: list[Any] = [
    None,
    "江苏",
    "广东",
    "",
    "x" * 300,
    0,
    -1,
    420,
    3.5,
    True,
    [],
    ["new"],
    [1, 2],
    {},
    {"a": 1},
    "A",
    "manufacturing",
]


def add_twin(app: FastAPI) -> None:
    """The same endpoint and declaration, answered by FastAPI's own route class."""
    app.router.add_api_route(
        TWIN,
        resolve_customer,
        methods=["POST"],
        response_model=Decision,
        responses=problem_responses(409),
        dependencies=[Depends(mark_unchanging)],
    )


def comparable(response: httpx.Response) -> tuple[int, str | None, Any]:
    content_type = response.headers.get("content-type")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body.pop("instance", None)
        body.pop("request_id", None)
    return response.status_code, content_type, body


def random_bodies(rng: random.Random, count: int) -> list[bytes]:
    bodies = []
    for _ in range(count):
        body: dict[str, Any] = {
            field: rng.choice(VALUES) for field in rng.sample(FIELDS, rng.randint(0, 5))
        }
        if rng.random() < 0.15:
            body["unknown"] = 1
        if rng.random() < 0.2:
            body["attributes"] = rng.choice([{}, {"segment": "smb"}, [], {"n": [1]}])
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


async def test_answers_as_fastapi_would_for_every_request(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    make_key: KeyMaker,
) -> None:
    add_twin(app)
    reader = await make_key(Scope.CUSTOMERS_READ)
    owners_only = await make_key(Scope.OWNERS_READ)
    revoked = await make_key(Scope.CUSTOMERS_READ)
    keys = (await client.get("/v1/api-keys")).json()["items"]
    (key_id,) = [key["id"] for key in keys if revoked.startswith(key["display_prefix"])]
    assert (await client.delete(f"/v1/api-keys/{key_id}")).status_code == 204
    json_type = {"Content-Type": "application/json"}
    valid = b'{"province": "\xe6\xb1\x9f\xe8\x8b\x8f", "employees": 30}'
    requests: list[tuple[dict[str, str], bytes]] = [
        ({}, valid),
        ({"Authorization": "Basic dXNlcjpwYXNz"} | json_type, valid),
        ({"Authorization": "Bearer"} | json_type, valid),
        ({"Authorization": "Bearer tsk_unknownunknownunknown"} | json_type, valid),
        ({"Authorization": f"Bearer {owners_only}"} | json_type, valid),
        ({"Authorization": f"Bearer {revoked}"} | json_type, valid),
        ({"Authorization": f"Bearer {reader}", "X-Act-As": "nobody"} | json_type, valid),
        ({"Authorization": f"Bearer {reader}", "X-Act-As": "x" * 200} | json_type, valid),
        ({} | json_type, b'{"province": '),  # malformed, and no key
        ({} | json_type, b'{"unknown": 1}'),  # invalid, and no key
    ]
    with_key = {"Authorization": f"Bearer {reader}"}
    for content_type in ("application/json", "application/merge-patch+json", "text/plain", None):
        headers = with_key | ({"Content-Type": content_type} if content_type else {})
        for body in (valid, b"", b"null", b"[]", b'"x"', b"{", b'{"province": 1}'):
            requests.append((headers, body))
    requests += [(with_key | json_type, body) for body in random_bodies(random.Random(5), 60)]

    for activated in (False, True):
        if activated:
            await activate(client, regions["ruleset"])
        for headers, body in requests:
            direct, twin = [
                await anonymous_client.post(path, content=body, headers=headers)
                for path in ("/v1/resolve", TWIN)
            ]
            assert comparable(direct) == comparable(twin), (headers, body)
    statuses = {
        (await anonymous_client.post("/v1/resolve", content=b, headers=h)).status_code
        for h, b in requests
    }
    assert {200, 401, 403, 422} <= statuses


async def test_previews_are_not_audited(
    client: httpx.AsyncClient, regions: dict[str, Any], engine: AsyncEngine
) -> None:
    await activate(client, regions["ruleset"])

    async def audited() -> int:
        async with engine.connect() as connection:
            count = select(func.count()).select_from(AuditEntry)
            return int((await connection.execute(count)).scalar_one())

    before = await audited()
    for _ in range(3):
        assert (await client.post("/v1/resolve", json={"province": "广东"})).status_code == 200
    assert await audited() == before


async def test_an_activation_holds_on_another_replica_for_every_request_sent_after_it(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    engine: AsyncEngine,
    settings: Settings,
    make_key: KeyMaker,
) -> None:
    concurrency = 8
    await activate(client, regions["ruleset"])
    copied = await client.post(
        "/v1/rulesets",
        json={
            "name": "next",
            "default_territory_id": regions["country"]["id"],
            "copy_active": True,
        },
    )
    second = copied.json()
    headers = {"Authorization": f"Bearer {await make_key(Scope.CUSTOMERS_READ)}"}
    replica = create_app(settings, engine=engine)
    activated = asyncio.Event()
    answers: list[tuple[bool, int]] = []
    sent_after = 0

    async def previews(other: httpx.AsyncClient, pause: float) -> None:
        nonlocal sent_after
        while sent_after < 4 * concurrency:
            await asyncio.sleep(pause)  # callers out of step: some ask while a round runs
            after = activated.is_set()
            response = await other.post("/v1/resolve", json={"province": "上海"}, headers=headers)
            assert response.status_code == 200, response.text
            answers.append((after, response.json()["ruleset_version"]))
            sent_after += after

    transport = httpx.ASGITransport(app=replica)
    async with (
        replica.router.lifespan_context(replica),
        httpx.AsyncClient(transport=transport, base_url="http://replica.test") as other,
    ):
        replica.state.request_reads = answering_late(replica.state.request_reads, seconds=0.1)
        running = [asyncio.create_task(previews(other, n * 0.015)) for n in range(concurrency)]
        while len(answers) < concurrency:
            await asyncio.sleep(0.01)
        await activate(client, second)
        activated.set()
        await asyncio.gather(*running)

    # Sent before: either set, as the activation may land first. Sent after: the new set.
    assert regions["ruleset"]["number"] in {version for after, version in answers if not after}
    assert {version for after, version in answers if after} == {second["number"]}
    # The rounds were shared: fewer reads of the active rule set than previews.
    assert replica.state.request_reads.rounds < len(answers)


async def test_a_client_that_goes_away_mid_body_gets_what_fastapi_answers(
    app: FastAPI, make_key: KeyMaker
) -> None:
    add_twin(app)
    headers = {
        "authorization": f"Bearer {await make_key(Scope.CUSTOMERS_READ)}",
        "content-type": "application/json",
    }
    assert [
        await status_when_the_client_leaves(app, path, headers) for path in ("/v1/resolve", TWIN)
    ] == [400, 400]


async def status_when_the_client_leaves(app: FastAPI, path: str, headers: dict[str, str]) -> int:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("territory.test", 80),
    }
    await app(scope, receive, send)
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


async def test_the_same_facts_in_another_order_get_the_same_member(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    owners = set()
    for n in range(12):
        attributes = {f"k{i}": n * 10 + i for i in range(3)}
        given, reordered = (
            {"province": "上海", "name": f"客户{n}", "attributes": dict(items)}
            for items in (attributes.items(), reversed(attributes.items()))
        )
        answers = [
            (await client.post("/v1/resolve", json=body)).json() for body in (given, reordered)
        ]
        assert answers[0]["owner_id"] == answers[1]["owner_id"]
        owners.add(answers[0]["owner_id"])
    assert owners == regions["owners"]  # the facts do spread previews over the members


async def with_response(
    body: ResolveRequest, principal: CustomersRead, response: Response
) -> Decision:
    raise NotImplementedError


def not_async(body: ResolveRequest, principal: CustomersRead) -> Decision:
    raise NotImplementedError


async def without_caller(body: ResolveRequest) -> Decision:
    raise NotImplementedError


@pytest.mark.parametrize("endpoint", [with_response, not_async, without_caller])
def test_a_direct_route_refuses_what_it_cannot_answer_when_declared(
    endpoint: Callable[..., Any],
) -> None:
    with pytest.raises(TypeError, match="DirectRoute"):
        APIRouter().add_api_route(
            "/x",
            endpoint,
            methods=["POST"],
            response_model=Decision,
            route_class_override=DirectRoute,
        )
