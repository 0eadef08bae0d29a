"""The contract as a fuzzer reads it: schemathesis generates requests from the document served
by a real server on each backend (examples, coverage, fuzzing, and stateful runs over its
links) and checks every answer against it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from territory_service.config import Settings
from tests.concurrency.servers import issue_admin_key, start_server, stop_server, wait_until_ready

# How much schemathesis generates is counted, not timed (schemathesis.toml: examples per operation
# in fuzzing, scenarios in the stateful phase), so a run does the same work on a slow or busy
# machine as on an idle one.
SEED = 20261202
HERE = Path(__file__).parent
REPOSITORY = HERE.parent.parent

# The failures that mean the server broke its own document. Schemathesis names them by type:
# a 5xx, a body or content type other than declared, a status not declared, a schema-valid
# request refused, and (our own check, st_checks.py) one refused as invalid.
CONTRACT_FAILURES = {
    "ServerError",
    "JsonSchemaError",
    "MalformedJson",
    "MissingContentType",
    "MalformedMediaType",
    "UndefinedContentType",
    "UndefinedStatusCode",
    "MissingHeaders",
    "ContentDeserializationError",
    "DiscriminatorMismatch",
    "RejectedPositiveData",
    "SchemaSaysTooLittle",
}


async def run_schemathesis(base_url: str, key: str, report: Path) -> dict[str, Any]:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        # One worker, a fixed seed and a counted budget: the same requests in the same order on
        # every run, so a failure here is reproducible (a longer exploratory run finds new ones).
        "--workers",
        "1",
        "--seed",
        str(SEED),
        # Strings travel as UTF-8, which cannot hold the lone surrogates the server refuses.
        "--phases",
        "examples,fuzzing,stateful",
        "--generation-codec",
        "utf-8",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    environment = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.contract.st_checks",
        "PYTHONPATH": str(REPOSITORY),
    }
    # The working directory holds schemathesis.toml.
    output = await _run(command, environment)
    assert report.exists(), output
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = output
    return result


async def _run(command: list[str], environment: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=HERE,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await process.communicate()
    return stdout.decode(errors="replace")


@pytest.mark.long
async def test_schemathesis_finds_no_break_of_the_contract(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    del app  # the test database, emptied afterwards
    key = await issue_admin_key(settings.database_url)
    server = start_server(settings.database_url, tmp_path)
    try:
        await wait_until_ready(server)
        result = await run_schemathesis(server.base_url, key, tmp_path / "schemathesis.json")
    finally:
        stop_server(server)

    assert result["test_cases"]["generated"] > 300, result["output"][-3000:]
    assert result["operations"]["tested"] == result["operations"]["total"], result["output"][-6000:]
    assert result["phases"]["stateful"]["status"] != "skip"
    broken = [f["title"] for f in result["failures"] if f["type"] in CONTRACT_FAILURES]
    assert broken == [], failures_section(result["output"])
    assert result["errors"] == [], result["output"][-20000:]


def failures_section(output: str) -> str:
    """What schemathesis printed about its failures, each with a curl line to replay it."""
    start = output.find(" FAILURES ")
    end = output.find(" WARNINGS ", start)
    return output[start:end] if start >= 0 else output[-20000:]
