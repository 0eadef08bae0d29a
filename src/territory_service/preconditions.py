"""Optimistic-concurrency preconditions: which versions of a resource a writer expects."""

from __future__ import annotations

from dataclasses import dataclass

from territory_service.errors import StaleVersion


@dataclass(frozen=True)
class ExpectedVersion:
    """What an `If-Match` header asked for: a set of versions, or any version at all (`*`)."""

    versions: frozenset[int] | None
    text: str

    def check(self, resource: str, current: int) -> None:
        if self.versions is not None and current not in self.versions:
            raise StaleVersion(resource, expected=self.text, current=current)


def check_expected(expected: ExpectedVersion | None, resource: str, current: int) -> None:
    if expected is not None:
        expected.check(resource, current)
