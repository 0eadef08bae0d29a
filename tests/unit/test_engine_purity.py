"""The rule engine imports no database, web, HTTP or event-loop code."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import territory_service.engine

FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "asyncio",
    "asyncpg",
    "aiosqlite",
    "pydantic",
)

PROBE = f"""
import importlib, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {FORBIDDEN!r}:
            raise ImportError("the rule engine must not import " + name)
        return None

sys.meta_path.insert(0, Refuse())
for module in sys.argv[1:]:
    importlib.import_module(module)
"""


def test_every_engine_module_imports_with_the_impure_packages_blocked() -> None:
    modules = [
        f"territory_service.engine.{info.name}"
        for info in pkgutil.iter_modules(territory_service.engine.__path__)
    ]
    assert len(modules) >= 5
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_probe_does_refuse_a_forbidden_import() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "territory_service.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "must not import" in result.stderr
