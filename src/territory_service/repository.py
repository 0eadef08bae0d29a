"""The base every domain repository builds on: all SQL lives in repositories."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import Base
from territory_service.errors import AlreadyExists, NotFound

ModelT = TypeVar("ModelT", bound=Base)


class Repository(Generic[ModelT]):
    model: ClassVar[type[Any]]
    resource_name: ClassVar[str]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def select(self) -> Select[Any]:
        return select(self.model)

    async def get(self, id: uuid.UUID, *, for_update: bool = False) -> ModelT | None:
        statement = self.select().where(self.model.id == id)
        if for_update:
            statement = statement.with_for_update(of=self.model)
        result: ModelT | None = (
            (await self.session.execute(statement)).unique().scalar_one_or_none()
        )
        return result

    async def get_or_raise(self, id: uuid.UUID, *, for_update: bool = False) -> ModelT:
        found = await self.get(id, for_update=for_update)
        if found is None:
            raise NotFound(self.resource_name, id)
        return found

    async def find_by(self, **equal_to: Any) -> ModelT | None:
        statement = self.select().filter_by(**equal_to).limit(1)
        result: ModelT | None = (
            (await self.session.execute(statement)).unique().scalar_one_or_none()
        )
        return result

    async def add(self, instance: ModelT) -> ModelT:
        self.session.add(instance)
        await self.session.flush()
        return instance

    async def update(self, instance: ModelT, changes: dict[str, Any]) -> ModelT:
        """Apply changes; the flush is a compare-and-set on the row's version."""
        for name, value in changes.items():
            setattr(instance, name, value)
        await self.session.flush()
        return instance

    async def delete(self, instance: ModelT) -> None:
        await self.session.delete(instance)
        await self.session.flush()

    async def ensure_unique(
        self, keys: dict[str, dict[str, Any]], *, exclude_id: uuid.UUID | None = None
    ) -> None:
        """Raise `AlreadyExists` naming the holder when another row has one of these keys.

        `keys` maps the name of a unique key (for the message) to its column values; keys with
        a missing value are unconstrained and skipped.
        """
        for field, values in keys.items():
            if any(value is None for value in values.values()):
                continue
            existing: Any = await self.find_by(**values)
            if existing is not None and existing.id != exclude_id:
                shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
                raise AlreadyExists(
                    f"{self.resource_name} {existing.id} already has {shown}",
                    existing_id=existing.id,
                    field=field,
                )


class TreeRepository(Repository[ModelT]):
    """A table whose rows form a forest through `parent_id` (territories, group companies)."""

    async def ancestor_ids(self, start_id: uuid.UUID) -> set[uuid.UUID]:
        """The row itself and every row above it; empty when the row does not exist."""
        model = self.model
        chain = (
            select(model.id, model.parent_id)
            .where(model.id == start_id)
            .cte(f"{model.__tablename__}_ancestors", recursive=True)
        )
        chain = chain.union_all(
            select(model.id, model.parent_id).where(model.id == chain.c.parent_id)
        )
        return set((await self.session.execute(select(chain.c.id))).scalars())

    async def has_children(self, parent_id: uuid.UUID) -> bool:
        statement = select(exists().where(self.model.parent_id == parent_id))
        return bool((await self.session.execute(statement)).scalar_one())

    async def lock_tree(self) -> None:
        """Serialise moves within the forest, so that two concurrent moves cannot build a cycle.

        SQLite needs nothing: its write transactions are already serial (BEGIN IMMEDIATE).
        """
        if self.dialect == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": f"{self.model.__tablename__}-tree"},
            )
