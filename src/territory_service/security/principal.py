"""Who is calling: the API key, what it may do and see, and the person it acts for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from territory_service.security.scopes import Scope


@dataclass(frozen=True)
class ActingOwner:
    id: uuid.UUID
    external_id: str


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    scopes: frozenset[Scope]
    # The roots of the territory subtrees the key is confined to; None: every territory.
    territory_ids: frozenset[uuid.UUID] | None
    acting_owner: ActingOwner | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    @property
    def is_territory_scoped(self) -> bool:
        return self.territory_ids is not None
