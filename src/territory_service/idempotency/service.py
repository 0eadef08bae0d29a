"""Idempotency keys: claiming a key for a request, keeping its answer, and giving the key back.

A request claims its key with an insert that does nothing when the key exists, in a short
transaction of its own, and then reads the key's record: the request whose token is on it runs;
every other one gets the kept answer, or 409 while there is none yet, or 422 when the key was
used for something else. A claim lasts `lease` and is extended while the request runs, so a
record without an answer whose lease lapsed belongs to a process that died and is taken over.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import utcnow
from territory_service.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from territory_service.idempotency.repository import IdempotencyRepository
from territory_service.transaction import transaction

RESOURCE = "idempotency key"
# Expired records deleted per claim: enough to keep up with any rate of new keys, small enough
# never to slow a request down.
PURGE_BATCH = 100
# A key given back between our insert and our read is claimed again, a few times at most.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """The right to run the request sent with `key` and to keep its answer."""

    key_id: uuid.UUID
    key: str
    token: uuid.UUID


@dataclass(frozen=True)
class KeptAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


async def usable_key_id(session: AsyncSession, *, secret_hash: str) -> uuid.UUID | None:
    """The id of the API key with this secret, unless it is unknown, revoked or expired."""
    async with transaction(session, resource=RESOURCE):
        return await IdempotencyRepository(session).usable_key_id(secret_hash, now=utcnow())


async def claim(
    session: AsyncSession,
    *,
    secret_hash: str,
    key: str,
    fingerprint: str,
    retention: dt.timedelta,
    lease: dt.timedelta,
) -> Claim | KeptAnswer | None:
    """Claim `key` for the caller with this secret, or return the answer kept for it.

    None when the secret belongs to no usable API key: the request is not the key's to make.
    Raises `IdempotencyKeyReused` or `IdempotencyKeyInFlight`."""
    for _ in range(CLAIM_ATTEMPTS):
        token = uuid.uuid4()
        now = utcnow()
        repository = IdempotencyRepository(session)
        async with transaction(session, resource=RESOURCE):
            key_id = await repository.usable_key_id(secret_hash, now=now)
            if key_id is None:
                return None
            await repository.purge_expired(now=now, limit=PURGE_BATCH)
            await repository.drop_stale(key_id, key, now=now)
            await repository.insert_if_absent(
                {
                    "key_id": key_id,
                    "key": key,
                    "fingerprint": fingerprint,
                    "lease_token": token,
                    "lease_until": now + lease,
                    "created_at": now,
                    "expires_at": now + retention,
                }
            )
            record = await repository.get(key_id, key)
        if record is None:
            continue  # the request holding the key failed and gave it back: claim it again
        if record.lease_token == token and record.response_status is None:
            return Claim(key_id=key_id, key=key, token=token)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.response_status is None:
            raise IdempotencyKeyInFlight()
        return KeptAnswer(
            status=record.response_status,
            headers=[(name, value) for name, value in record.response_headers or ()],
            body=record.response_body or b"",
        )
    raise IdempotencyKeyInFlight()


async def keep_answer(session: AsyncSession, *, claim: Claim, answer: KeptAnswer) -> None:
    """Keep the answer of the request that holds `claim`, for its retries."""
    async with transaction(session, resource=RESOURCE):
        await IdempotencyRepository(session).update_leased(
            claim.key_id,
            claim.key,
            claim.token,
            {
                "response_status": answer.status,
                "response_headers": [list(header) for header in answer.headers],
                "response_body": answer.body,
            },
        )


async def extend_lease(session: AsyncSession, *, claim: Claim, lease: dt.timedelta) -> None:
    async with transaction(session, resource=RESOURCE):
        await IdempotencyRepository(session).update_leased(
            claim.key_id, claim.key, claim.token, {"lease_until": utcnow() + lease}
        )


async def give_back(session: AsyncSession, *, claim: Claim) -> None:
    """Forget the key of a request that failed, so that a retry runs it again."""
    async with transaction(session, resource=RESOURCE):
        await IdempotencyRepository(session).delete_leased(claim.key_id, claim.key, claim.token)
