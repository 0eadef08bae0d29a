import datetime as dt
import uuid

from territory_service.schemas import OutputModel, PageOut


class AuditEntry(OutputModel):
    id: int
    created_at: dt.datetime
    key_id: uuid.UUID | None
    acting_owner_id: uuid.UUID | None
    method: str
    path: str
    status: int
    request_id: str | None
    resource_ids: list[str]


class AuditPage(PageOut):
    items: list[AuditEntry]
