"""The base every domain repository builds on: all SQL lives in repositories."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import Base
from territory_service.errors import AlreadyExists, NotFound

ModelT = TypeVar("ModelT", bound=Base)


def where_equal(statement: Select[Any], filters: object, names: tuple[str, ...]) -> Select[Any]:
    """Add `column == value` for each named filter that has a value (same name on both)."""
    entity = statement.column_descriptions[0]["entity"]
    for name in names:
        value = getattr(filters, name)
        if value is not None:
            statement = statement.where(getattr(entity, name) == value)
    return statement


class Repository(Generic[ModelT]):
    """Queries of one table. Given `roots`, every query through `select()` sees only the rows
    that lie in those territories' subtrees: that is how a confined API key is confined."""

    model: ClassVar[type[Any]]
    resource_name: ClassVar[str]

    def __init__(self, session: AsyncSession, *, roots: frozenset[uuid.UUID] | None = None) -> None:
        self.session = session
        self.roots = roots

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:  # noqa: ARG002
        """The condition for a row to lie within the subtrees of `roots`.

        Fails closed: a repository that does not say how to confine its rows cannot be used by a
        confined key at all."""
        raise TypeError(f"{self.resource_name} cannot be confined to territories")

    def unscoped_select(self) -> Select[Any]:
        return select(self.model)

    def scoped(self, statement: Select[Any]) -> Select[Any]:
        """`statement` restricted to the rows this repository's caller may see."""
        if self.roots is None:
            return statement
        return statement.where(self.visibility(self.roots))

    def select(self) -> Select[Any]:
        return self.scoped(self.unscoped_select())

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

    async def find_by(self, *, scoped: bool = True, **equal_to: Any) -> ModelT | None:
        statement = (self.select() if scoped else self.unscoped_select()).filter_by(**equal_to)
        statement = statement.limit(1)
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
            existing: Any = await self.find_by(scoped=False, **values)
            if existing is None or existing.id == exclude_id:
                continue
            shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
            if self.roots is not None and await self.get(existing.id) is None:
                # Uniqueness is global, but a confined key must not learn what lies outside.
                raise AlreadyExists(
                    f"a {self.resource_name} outside your territories already has {shown}",
                    existing_id=None,
                    field=field,
                )
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
