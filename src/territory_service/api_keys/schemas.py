import datetime as dt
import uuid

from pydantic import AwareDatetime, Field

from territory_service.schemas import InputModel, Name, PageOut, ResourceOut
from territory_service.security.scopes import Scope


class ApiKeyCreate(InputModel):
    name: Name = Field(description="What the key is for, e.g. the integration's name.")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    territory_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=100,
        description="Confine the key to these territories and everything below them. "
        "A confined key cannot hold the `admin` scope.",
    )
    expires_at: AwareDatetime | None = Field(default=None, description="Must be in the future.")


class ApiKey(ResourceOut):
    id: uuid.UUID
    name: str
    display_prefix: str = Field(description="The secret's first characters, to recognise it.")
    scopes: list[Scope]
    territory_ids: list[uuid.UUID] | None
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: dt.datetime | None
    created_by_key_id: uuid.UUID | None


class ApiKeyWithSecret(ApiKey):
    secret: str = Field(description="The key itself. Shown only in this response; store it now.")


class ApiKeyPage(PageOut):
    items: list[ApiKey]
