"""Stateless `POST /v1/resolve` under load, as a ratio of the same server's `/healthz`.

Run: `make bench-load` (or `.venv/bin/python -m bench.resolve_load_bench`). Needs `wrk`
(`apt-get install wrk`). It makes a fresh PostgreSQL database `territory_load` (server from
BENCH_DATABASE_URL, default the local one) with the migrations and the demo data (its active
rule set included), starts one `territory-service serve` process, and drives both endpoints
with the same wrk settings, alternating them for `--rounds` rounds so that the machine's drift
touches both alike; the figure to read is the median of the rounds' ratios. On a machine with
two or more cores the server runs on core 0 and wrk on core 1, so the load tool does not take
turns with the server it measures. It also counts the database transactions per resolve.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SERVER = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "territory_load"
PORT = 8791
COMMAND = str(Path(sys.executable).with_name("territory-service"))
# A lead-capture form's facts: a mid-size manufacturer in 江苏.
FACTS = {
    "name": "苏州精密机械有限公司",
    "province": "江苏",
    "city": "苏州",
    "industry": "manufacturing",
    "employees": 420,
    "annual_revenue": 3.2e8,
    "tier": "B",
    "tags": ["new"],
}


def _cli(database_url: str, *args: str) -> str:
    environment = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [COMMAND, *args],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def _recreate_database() -> str:
    admin = create_async_engine(SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        await connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    await admin.dispose()
    return SERVER.rsplit("/", 1)[0] + f"/{DATABASE}"


def _on_core(core: int) -> Callable[[], None] | None:
    """Run a child on one core, when the machine has two or more."""
    if len(os.sched_getaffinity(0)) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def _wrk(url: str, *, seconds: int, connections: int, script: Path | None) -> tuple[float, int]:
    """Requests per second, and how many requests were made."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, preexec_fn=_on_core(1)
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    made = re.search(r"(\d+) requests in", output)
    if rate is None or made is None or "Non-2xx" in output:
        raise SystemExit(f"wrk reported errors:\n{output}")
    return float(rate.group(1)), int(made.group(1))


async def _transactions(database_url: str) -> int:
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        count = await connection.execute(
            text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
        value = int(count.scalar_one())
    await engine.dispose()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    database_url = asyncio.run(_recreate_database())
    _cli(database_url, "migrate")
    _cli(database_url, "demo")
    key = _cli(database_url, "create-key", "--name", "load bench", "--scope", "customers:read")
    key = key.strip()
    environment = os.environ | {
        "DATABASE_URL": database_url,
        "PORT": str(PORT),
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([COMMAND, "serve"], env=environment, preexec_fn=_on_core(0))
    base = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        answer = httpx.post(
            f"{base}/v1/resolve", json=FACTS, headers={"Authorization": f"Bearer {key}"}
        )
        answer.raise_for_status()
        with tempfile.NamedTemporaryFile("w", suffix=".lua", encoding="utf-8") as script:
            script.write(
                'wrk.method = "POST"\n'
                f"wrk.body = [[{json.dumps(FACTS, ensure_ascii=False)}]]\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {key}"\n'
            )
            script.flush()
            lua = Path(script.name)
            settings = {"seconds": args.seconds, "connections": args.connections}
            _wrk(f"{base}/healthz", seconds=2, connections=args.connections, script=None)
            _wrk(f"{base}/v1/resolve", seconds=2, connections=args.connections, script=lua)
            rounds, resolves, before = [], 0, asyncio.run(_transactions(database_url))
            for _ in range(args.rounds):
                healthz, _made = _wrk(f"{base}/healthz", script=None, **settings)
                resolve, made = _wrk(f"{base}/v1/resolve", script=lua, **settings)
                rounds.append((healthz, resolve))
                resolves += made
            # The stats collector reports with a delay of up to half a second.
            time.sleep(1)
            transactions = asyncio.run(_transactions(database_url)) - before
    finally:
        server.terminate()
        server.wait()
    cores = "server on core 0, wrk on core 1" if _on_core(0) else "one core"
    print(
        f"one server process, wrk -t1 -c{args.connections} -d{args.seconds}s, PostgreSQL, "
        f"{cores}, {args.rounds} rounds"
    )
    print(f"{'round':<7} {'healthz rps':>12} {'resolve rps':>12} {'ratio':>7}")
    for number, (healthz, resolve) in enumerate(rounds, 1):
        print(f"{number:<7} {healthz:>12.0f} {resolve:>12.0f} {resolve / healthz:>7.2f}")
    median = statistics.median(resolve / healthz for healthz, resolve in rounds)
    print(f"median ratio POST /v1/resolve : GET /healthz = {median:.2f}")
    print(f"database transactions per resolve: {transactions / resolves:.2f}")
    print(f"decision: {answer.json()['territory_id']} owner {answer.json()['owner_id']}")


if __name__ == "__main__":
    main()
