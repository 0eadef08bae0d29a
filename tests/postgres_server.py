"""Find or start a PostgreSQL server for the test suite.

The entry point is :func:`find_or_start_postgres`, which is synchronous because it is
called from a pytest hook before any event loop exists. It tries, in order:

1. ``TEST_DATABASE_URL`` from the environment (used as given, only normalised);
2. a server answering at 127.0.0.1:5432 as user ``postgres`` (trust auth), database ``test``;
3. starting a configured Debian/Ubuntu cluster with ``pg_ctlcluster`` and retrying step 2;
4. a throw-away server from local ``initdb``/``pg_ctl`` binaries in a temporary directory.

If nothing works it returns ``(None, reason)``. :func:`create_database` and
:func:`drop_database` give each test session its own database on the chosen server.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import glob
import logging
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "PostgresServer",
    "create_database",
    "drop_database",
    "find_or_start_postgres",
    "find_pg_binaries",
    "normalise_url",
    "probe",
    "quote_database_name",
    "start_temporary_server",
    "to_asyncpg_dsn",
    "validate_database_name",
]

logger = logging.getLogger(__name__)

ENV_VAR = "TEST_DATABASE_URL"
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
LOCAL_USER = "postgres"
LOCAL_DATABASE = "test"
PROBE_TIMEOUT = 3.0
CLUSTER_WAIT = 15.0
ASYNCPG_DRIVER = "postgresql+asyncpg"

_ACCEPTED_DRIVERS = frozenset({"postgresql", "postgres", ASYNCPG_DRIVER})
_DATABASE_NAME = re.compile(r"[a-z0-9_]{1,63}")

_T = TypeVar("_T")


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server the tests may use."""

    url: str
    """``postgresql+asyncpg://`` URL of a database to connect to for admin work."""
    how: str
    """``"TEST_DATABASE_URL"``, ``"local server"``, ``"started cluster"`` or
    ``"temporary server"``."""
    stop: Callable[[], None] | None = None
    """Stops and removes the server; set only when we started a temporary server."""


# --------------------------------------------------------------------------- URLs and names


def normalise_url(url: str) -> str:
    """Return ``url`` as a ``postgresql+asyncpg://`` SQLAlchemy URL.

    Accepts ``postgresql://``, ``postgres://`` and ``postgresql+asyncpg://``; raises
    :class:`ValueError` for anything else.
    """
    try:
        parsed = make_url(url.strip())
    except Exception as exc:  # sqlalchemy raises ArgumentError; keep the message
        raise ValueError(f"not a database URL: {exc}") from exc
    if parsed.drivername not in _ACCEPTED_DRIVERS:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "expected postgresql://, postgres:// or postgresql+asyncpg://"
        )
    return parsed.set(drivername=ASYNCPG_DRIVER).render_as_string(hide_password=False)


def to_asyncpg_dsn(url: str) -> str:
    """Convert a SQLAlchemy-style PostgreSQL URL to a DSN ``asyncpg.connect`` accepts."""
    parsed = make_url(normalise_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    """Return ``url`` (normalised) pointing at database ``name`` instead."""
    parsed = make_url(normalise_url(url))
    return parsed.set(database=name).render_as_string(hide_password=False)


def validate_database_name(name: str) -> str:
    """Return ``name`` if it is a safe database name (``[a-z0-9_]``, 1-63 chars)."""
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use 1-63 characters of [a-z0-9_]")
    return name


def quote_database_name(name: str) -> str:
    """Return ``name`` validated and double-quoted for use in SQL."""
    return f'"{validate_database_name(name)}"'


# --------------------------------------------------------------------------- async helpers


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from synchronous code.

    Uses ``asyncio.run``; if this thread already runs an event loop, runs it in a
    separate thread instead so the call still works.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _connect(url: str, timeout: float = PROBE_TIMEOUT) -> Any:
    return await asyncpg.connect(to_asyncpg_dsn(url), timeout=timeout)


async def _probe(url: str, timeout: float) -> str | None:
    try:
        conn = await _connect(url, timeout)
    except Exception as exc:  # anything means "not usable"; report why
        return _describe(exc)
    try:
        await conn.fetchval("SELECT 1", timeout=timeout)
    except Exception as exc:
        return _describe(exc)
    finally:
        await conn.close(timeout=timeout)
    return None


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Try to connect to ``url``; return ``None`` if it works, else the reason it did not."""
    return _run_async(_probe(url, timeout))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url``; return its URL."""
    quoted = quote_database_name(name)
    conn = await _connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (if it exists) on the server of ``admin_url``."""
    quoted = quote_database_name(name)
    conn = await _connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


async def _ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` via ``admin_url`` unless it already exists."""
    quoted = quote_database_name(name)
    conn = await _connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


# --------------------------------------------------------------------------- steps 1 and 2


def _local_url(port: int, database: str = LOCAL_DATABASE) -> str:
    return f"{ASYNCPG_DRIVER}://{LOCAL_USER}@{LOCAL_HOST}:{port}/{database}"


def _try_local(port: int = LOCAL_PORT) -> tuple[str | None, str]:
    """Return ``(url, "")`` if a trust-auth server answers at 127.0.0.1:``port``.

    If the server answers but database ``test`` is missing, it is created.
    """
    url = _local_url(port)
    error = probe(url)
    if error is None:
        return url, ""
    if "InvalidCatalogNameError" in error:
        try:
            _run_async(_ensure_database(_local_url(port, "postgres"), LOCAL_DATABASE))
        except Exception as exc:
            return None, f"{LOCAL_HOST}:{port}: cannot create database test: {_describe(exc)}"
        error = probe(url)
        if error is None:
            return url, ""
    return None, f"{LOCAL_HOST}:{port}: {error}"


# --------------------------------------------------------------------------- step 3


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def _configured_clusters() -> list[tuple[str, int]]:
    """Return ``(version, port)`` for each ``/etc/postgresql/<ver>/main``, newest first."""
    clusters: list[tuple[str, int]] = []
    for conf_dir in glob.glob("/etc/postgresql/*/main"):
        version = Path(conf_dir).parent.name
        clusters.append((version, _configured_port(Path(conf_dir) / "postgresql.conf")))
    clusters.sort(key=lambda item: _version_key(item[0]), reverse=True)
    return clusters


def _configured_port(conf: Path) -> int:
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return LOCAL_PORT
    port = LOCAL_PORT
    for line in text.splitlines():
        match = re.match(r"\s*port\s*=\s*'?(\d+)'?", line)
        if match:
            port = int(match.group(1))
    return port


def _try_start_cluster() -> tuple[str | None, str]:
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    if pg_ctlcluster is None:
        return None, "pg_ctlcluster: not installed"
    clusters = _configured_clusters()
    if not clusters:
        return None, "pg_ctlcluster: no cluster configured in /etc/postgresql/*/main"
    reasons: list[str] = []
    for version, port in clusters:
        cmd = [pg_ctlcluster, "--skip-systemctl-redirect", version, "main", "start"]
        logger.info("starting PostgreSQL cluster: %s", shlex.join(cmd))
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, check=False, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"pg_ctlcluster {version} main: {_describe(exc)}")
            continue
        if result.returncode != 0:
            # Exit code 2 means "already running"; the probe below decides either way.
            logger.info(
                "pg_ctlcluster %s main start exited %s: %s",
                version,
                result.returncode,
                (result.stderr or result.stdout).strip(),
            )
        deadline = time.monotonic() + CLUSTER_WAIT
        while True:
            url, reason = _try_local(port)
            if url is not None:
                return url, ""
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        output = (result.stderr or result.stdout).strip()
        detail = f" (pg_ctlcluster exited {result.returncode}: {output})" if output else ""
        reasons.append(f"pg_ctlcluster {version} main{detail}: {reason}")
    return None, "; ".join(reasons)


# --------------------------------------------------------------------------- step 4


def find_pg_binaries() -> tuple[Path, Path] | None:
    """Return ``(initdb, pg_ctl)``: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is not None and pg_ctl is not None:
        return Path(initdb), Path(pg_ctl)
    bin_dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: _version_key(Path(d).parent.name),
        reverse=True,
    )
    for bin_dir in bin_dirs:
        initdb_path, pg_ctl_path = Path(bin_dir, "initdb"), Path(bin_dir, "pg_ctl")
        if os.access(initdb_path, os.X_OK) and os.access(pg_ctl_path, os.X_OK):
            return initdb_path, pg_ctl_path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    """Whom to run the server commands as (``None`` fields: the current user)."""

    user: str | None = None
    uid: int | None = None
    gid: int | None = None

    def run(self, cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        logger.debug("running%s: %s", f" as {self.user}" if self.user else "", shlex.join(cmd))
        if self.user is None:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
            )
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            env={**os.environ, "HOME": str(cwd)},
        )


def _run_as() -> _RunAs:
    """initdb and postgres refuse to run as root: use the ``postgres`` user then."""
    if os.geteuid() != 0:
        return _RunAs()
    entry = pwd.getpwnam("postgres")  # KeyError if missing; handled by the caller
    return _RunAs(user=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_temporary_server() -> tuple[PostgresServer | None, str]:
    """Start a throw-away server from local binaries, with database ``test``.

    The returned server's ``stop`` stops it (``pg_ctl stop -m fast``) and removes its
    directory; it is also registered with :mod:`atexit` and is safe to call twice.
    """
    binaries = find_pg_binaries()
    if binaries is None:
        return None, "temporary server: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin"
    initdb, pg_ctl = binaries
    try:
        run_as = _run_as()
    except KeyError:
        return None, "temporary server: running as root but there is no 'postgres' user"

    # The postgres user must be able to reach the directory, so avoid a private TMPDIR.
    base = "/tmp" if run_as.user is not None and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="territory-pg-", dir=base))
    if run_as.uid is not None and run_as.gid is not None:
        os.chown(root, run_as.uid, run_as.gid)
    data, log = root / "data", root / "postgres.log"
    started = False

    def cleanup() -> None:
        nonlocal started
        atexit.unregister(cleanup)
        # postmaster.pid also covers a server left running by a failed or timed-out start.
        if started or (data / "postmaster.pid").exists():
            started = False
            try:
                result = run_as.run(
                    [str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"], root, 60
                )
                if result.returncode != 0:
                    logger.warning("pg_ctl stop failed: %s", _output(result))
            except (OSError, subprocess.TimeoutExpired) as exc:
                logger.warning("pg_ctl stop failed: %s", _describe(exc))
        shutil.rmtree(root, ignore_errors=True)

    try:
        init_cmd = [str(initdb), "-D", str(data), "--auth=trust", "-U", LOCAL_USER]
        init_cmd += ["-E", "UTF8", "--locale=C", "--no-sync"]
        logger.info("initialising temporary PostgreSQL in %s", data)
        result = run_as.run(init_cmd, root, 120)
        if result.returncode != 0:
            cleanup()
            return None, f"temporary server: initdb failed: {_output(result)}"

        port = 0
        for _attempt in range(3):
            port = _free_port()
            options = (
                f"-p {port} -k {shlex.quote(str(root))} "
                f"-c listen_addresses={LOCAL_HOST} -c fsync=off"
            )
            # -l keeps the server's output out of our pipes (else run() would wait for it).
            start_cmd = [str(pg_ctl), "-D", str(data), "-l", str(log), "-o", options]
            start_cmd += ["-w", "-t", "60", "start"]
            result = run_as.run(start_cmd, root, 90)
            if result.returncode == 0:
                started = True
                break
            logger.info("pg_ctl start on port %s failed: %s", port, _output(result))
        if not started:
            reason = f"temporary server: pg_ctl start failed: {_output(result)}\n{_tail(log)}"
            cleanup()
            return None, reason.strip()

        atexit.register(cleanup)
        _run_async(_ensure_database(_local_url(port, "postgres"), LOCAL_DATABASE))
    except Exception as exc:  # whatever went wrong, leave nothing behind
        cleanup()
        return None, f"temporary server: {_describe(exc)}"
    except BaseException:
        cleanup()
        raise

    url = _local_url(port)
    logger.info("temporary PostgreSQL running at %s (data in %s)", url, data)
    return PostgresServer(url=url, how="temporary server", stop=cleanup), ""


# --------------------------------------------------------------------------- entry point


def find_or_start_postgres() -> tuple[PostgresServer | None, str]:
    """Find or start a PostgreSQL server; return ``(server, "")`` or ``(None, reason)``."""
    env_url = os.environ.get(ENV_VAR, "").strip()
    if env_url:
        try:
            url = normalise_url(env_url)
        except ValueError as exc:
            return None, f"{ENV_VAR} is set but unusable: {exc}"
        logger.info("using PostgreSQL from %s", ENV_VAR)
        return PostgresServer(url=url, how=ENV_VAR), ""

    reasons = [f"{ENV_VAR} not set"]

    url_or_none, reason = _try_local()
    if url_or_none is not None:
        logger.info("using local PostgreSQL at %s", url_or_none)
        return PostgresServer(url=url_or_none, how="local server"), ""
    reasons.append(reason)

    url_or_none, reason = _try_start_cluster()
    if url_or_none is not None:
        logger.info("started PostgreSQL cluster; using %s", url_or_none)
        return PostgresServer(url=url_or_none, how="started cluster"), ""
    reasons.append(reason)

    server, reason = start_temporary_server()
    if server is not None:
        return server, ""
    reasons.append(reason)

    full_reason = "; ".join(reasons)
    logger.warning("no PostgreSQL server available: %s", full_reason)
    return None, full_reason
