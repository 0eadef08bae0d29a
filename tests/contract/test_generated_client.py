"""An integrator's first hour, with a client generated from `openapi/openapi.json` by
openapi-python-client and nothing else: what the document says must be enough to page the
customers, create one, change its ownership with If-Match, request and approve a transfer,
activate a rule set and follow its job to the end, follow the change feed, and read a 404."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from territory_service.openapi import DOCUMENT_PATH
from territory_service.security.scopes import Scope
from tests.conftest import KeyMaker

REPOSITORY = Path(__file__).parent.parent.parent
PACKAGE = "territory_client"
BASE_URL = "http://territory.test"


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The client package, generated once per session, and the modules the flow uses."""
    directory = tmp_path_factory.mktemp("generated")
    binaries = Path(sys.executable).parent
    subprocess.run(
        [str(binaries / "openapi-python-client"), "generate"]
        + ["--path", str(REPOSITORY / DOCUMENT_PATH), "--meta", "none"]
        + ["--output-path", str(directory / PACKAGE)],
        check=True,
        capture_output=True,
        env=os.environ | {"PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    sys.path.insert(0, str(directory))
    try:
        names = {
            "client": "client",
            "models": "models",
            "customers": "api.customers",
            "create_customer": "api.customers.create_customer",
            "list_customers": "api.customers.list_customers",
            "get_customer": "api.customers.get_customer",
            "get_ownership": "api.ownership.get_ownership",
            "assign_ownership": "api.ownership.assign_ownership",
            "create_transfer": "api.transfers.create_transfer",
            "approve_transfer": "api.transfers.approve_transfer",
            "create_owner": "api.owners.create_owner",
            "create_territory": "api.territories.create_territory",
            "put_member": "api.territories.put_member",
            "create_ruleset": "api.rule_sets.create_ruleset",
            "create_rule": "api.rule_sets.create_rule",
            "activate_ruleset": "api.rule_sets.activate_ruleset",
            "get_job": "api.jobs.get_job",
            "list_events": "api.events.list_events",
        }
        yield {key: importlib.import_module(f"{PACKAGE}.{name}") for key, name in names.items()}
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


@pytest.fixture
async def api(generated: dict[str, ModuleType], app: FastAPI, make_key: KeyMaker) -> Any:
    key = await make_key(Scope.ADMIN)
    client = generated["client"].AuthenticatedClient(base_url=BASE_URL, token=key)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        yield client.set_async_httpx_client(http)


def etag(response: Any) -> str:
    tag: str = response.headers["etag"]
    assert tag == f'"{response.parsed.version}"'
    return tag


async def test_an_integrator_runs_the_flows_with_the_generated_client_alone(
    generated: dict[str, ModuleType], api: Any
) -> None:
    m = generated["models"]

    # Owners, a territory with both as members, and a rule set that sends everyone there.
    first, second = [
        (
            await generated["create_owner"].asyncio_detailed(
                client=api, body=m.OwnerCreate(external_id=f"rep-{n}", name=f"销售{n}")
            )
        ).parsed
        for n in (1, 2)
    ]
    east = (
        await generated["create_territory"].asyncio_detailed(
            client=api, body=m.TerritoryCreate(name="华东")
        )
    ).parsed
    for owner in (first, second):
        joined = await generated["put_member"].asyncio_detailed(
            east.id, owner.id, client=api, body=m.MemberPut()
        )
        assert joined.status_code == 201, joined.content
    ruleset = (
        await generated["create_ruleset"].asyncio_detailed(
            client=api, body=m.RuleSetCreate(name="2027", default_territory_id=east.id)
        )
    ).parsed
    everyone = m.ConditionIn(any_of=[m.AllOf(all_of=[])])
    rule = await generated["create_rule"].asyncio_detailed(
        ruleset.id,
        client=api,
        body=m.RuleCreate(name="全部", priority=1, condition=everyone, territory_id=east.id),
    )
    assert rule.status_code == 201, rule.content
    assert isinstance(rule.parsed.condition, m.ConditionIn)

    # Customers created before the activation; paged through with the cursor.
    created = []
    for n in range(5):
        response = await generated["create_customer"].asyncio_detailed(
            client=api,
            body=m.CustomerCreate(source="crm", external_id=f"C{n}", name=f"华东机械{n}有限公司"),
        )
        assert response.status_code == 201, response.content
        etag(response)
        assert response.headers["location"] == f"/v1/customers/{response.parsed.id}"
        created.append(response.parsed.id)
    paged, cursor = [], None
    while True:
        page = (
            await generated["list_customers"].asyncio_detailed(
                client=api, limit=2, **({"cursor": cursor} if cursor else {})
            )
        ).parsed
        paged += [customer.id for customer in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(paged) == sorted(created)

    # Activation is a job: poll it until it says it is done with every customer.
    started = await generated["activate_ruleset"].asyncio_detailed(ruleset.id, client=api)
    assert started.status_code == 202, started.content
    assert started.headers["location"] == f"/v1/jobs/{started.parsed.id}"
    job = started.parsed
    for _ in range(1000):
        job = (await generated["get_job"].asyncio_detailed(job.id, client=api)).parsed
        if job.status in (m.JobStatus.SUCCEEDED, m.JobStatus.FAILED):
            break
        await asyncio.sleep(0.01)
    assert job.status == m.JobStatus.SUCCEEDED
    assert job.done == job.total == len(created)
    assert isinstance(job.result, m.ActivationResult)
    assert job.result.customers == len(created)

    # Move one customer by hand, based on the ownership version just read.
    customer_id = created[0]
    read = await generated["get_ownership"].asyncio_detailed(customer_id, client=api)
    other = second if read.parsed.owner_id == first.id else first
    moved = await generated["assign_ownership"].asyncio_detailed(
        customer_id,
        client=api,
        body=m.OwnershipAssign(owner_id=other.id, reason="客户要求"),
        if_match=etag(read),
    )
    assert moved.status_code == 200, moved.content
    assert moved.parsed.owner_id == other.id
    stale = await generated["assign_ownership"].asyncio_detailed(
        customer_id,
        client=api,
        body=m.OwnershipAssign(owner_id=other.id, reason="again"),
        if_match=etag(read),
    )
    assert stale.status_code == 412
    assert isinstance(stale.parsed, m.Problem)

    # Hand it back through a transfer an approver accepts.
    back = first if other == second else second
    requested = await generated["create_transfer"].asyncio_detailed(
        client=api,
        body=m.TransferCreate(customer_ids=[customer_id], to_owner_id=back.id, reason="交接"),
    )
    assert requested.status_code == 201, requested.content
    approved = await generated["approve_transfer"].asyncio_detailed(
        requested.parsed.id,
        client=api,
        body=m.TransferDecision(note="同意"),
        if_match=etag(requested),
    )
    assert approved.status_code == 200, approved.content
    assert approved.parsed.status == m.TransferStatus.APPLIED
    owner_now = (await generated["get_ownership"].asyncio_detailed(customer_id, client=api)).parsed
    assert owner_now.owner_id == back.id

    # The change feed tells the whole story of that customer, in order, once.
    events, after = [], None
    while True:
        page = (
            await generated["list_events"].asyncio_detailed(
                client=api, limit=3, **({"after": after} if after else {})
            )
        ).parsed
        events += page.items
        after = page.next_cursor
        if not page.items:
            break
    mine = [event for event in events if event.customer_id == customer_id]
    assert [event.owner_id for event in mine][-2:] == [other.id, back.id]
    assert len({event.id for event in events}) == len(events)

    # An unknown customer is a typed problem.
    missing = await generated["get_customer"].asyncio_detailed(uuid.uuid4(), client=api)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, m.Problem)
    assert missing.parsed.status == 404
    assert missing.parsed.type_.endswith(":not-found")
