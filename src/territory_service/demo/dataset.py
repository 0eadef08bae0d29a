"""A deterministic demo data set: China's territory tree, a sales team and about 2,000 customers.

Every value, ids included, comes from one seeded `random.Random`, so the same seed always builds the
same rows and a demo, a screenshot or a benchmark can be reproduced exactly. Nothing here touches a
database: the objects are built in memory and a loader inserts them.

The pool holds what a duplicate detector and the group policy need to be shown off: a few group
companies whose subsidiaries sit in other regions, and a few companies entered twice under slightly
different names.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

from territory_service.demo.catalog import (
    BRANDS,
    ERP_SYSTEMS,
    GROUPS,
    INDUSTRIES,
    MEMBERS,
    NEAR_DUPLICATES,
    ORGANIZATION_CODE_WEIGHTS,
    OWNERS,
    PROVINCE_STRATEGIES,
    PROVINCES,
    PROVINCES_BY_NAME,
    REGIONS,
    USCC_CHARS,
    USCC_WEIGHTS,
    City,
    Group,
    NearDuplicate,
    Office,
    Province,
)

# Through `territory_service.models`, so that every mapper the relationships name is registered
# before the first object is built.
from territory_service.models import Customer, Owner, PoolRules, Territory, TerritoryMember
from territory_service.territories.models import DistributionStrategy

BASE_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SOURCE = "demo-crm"
CUSTOMER_COUNT = 2000


@dataclass(frozen=True)
class DemoDataset:
    territories: list[Territory]  # parents before children
    owners: list[Owner]
    members: list[TerritoryMember]
    pool_rules: list[PoolRules]
    customers: list[Customer]  # group roots before their subsidiaries


def build_demo_dataset(seed: int = 20261123) -> DemoDataset:
    """Build the demo territories, owners, memberships and customers: same seed, same rows."""
    rng = random.Random(seed)
    territories = _build_territories(rng)
    owners = _build_owners(rng)
    members = _build_members(territories, owners)
    customers = _CustomerFactory(rng).build()
    return DemoDataset(
        territories=list(territories.values()),
        owners=list(owners.values()),
        members=members,
        pool_rules=_build_pool_rules(territories),
        customers=customers,
    )


def _build_pool_rules(territories: dict[str, Territory]) -> list[PoolRules]:
    """公海规则: nationwide defaults, and a stricter pool in 华东 where reps hold fewer."""
    nationwide = PoolRules(
        territory_id=territories["CN"].id,
        holding_limit=50,
        daily_claim_limit=10,
        cooldown_days=15,
        reclaim_enabled=True,
        reclaim_after_days=30,
        reclaim_after_days_by_tier={"A": 90, "B": 60},
        exempt_tags=["open_deal"],
        reminder_days=7,
        **_stamp(dt.timedelta()),
    )
    east = PoolRules(
        territory_id=territories["CN-EAST"].id,
        holding_limit=30,
        **_stamp(dt.timedelta()),
    )
    return [nationwide, east]


def _new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _stamp(offset: dt.timedelta) -> dict[str, Any]:
    at = BASE_AT + offset
    return {"version": 1, "created_at": at, "updated_at": at}


def _build_territories(rng: random.Random) -> dict[str, Territory]:
    """Territories by code: 全国, then the seven regions, then the provinces."""
    root = Territory(
        id=_new_uuid(rng),
        code="CN",
        name="全国",
        description="全国客户总池：没有被任何大区或省份规则覆盖的客户在此兜底。",
        parent_id=None,
        strategy=DistributionStrategy.ROUND_ROBIN,
        **_stamp(dt.timedelta()),
    )
    territories = {"CN": root}
    for code, name, strategy in REGIONS:
        provinces = "、".join(p.name for p in PROVINCES if p.region_code == code)
        territories[code] = Territory(
            id=_new_uuid(rng),
            code=code,
            name=name,
            description=f"{name}大区，负责{provinces}的客户。",
            parent_id=root.id,
            strategy=strategy,
            **_stamp(dt.timedelta(minutes=len(territories))),
        )
    for province in PROVINCES:
        region = territories[province.region_code]
        territories[province.code] = Territory(
            id=_new_uuid(rng),
            code=province.code,
            name=province.name,
            description=f"{province.full_name}的客户，属{region.name}大区。",
            parent_id=region.id,
            strategy=PROVINCE_STRATEGIES.get(
                province.code.removeprefix("CN-"), DistributionStrategy.ROUND_ROBIN
            ),
            **_stamp(dt.timedelta(minutes=len(territories))),
        )
    return territories


def _build_owners(rng: random.Random) -> dict[str, Owner]:
    owners: dict[str, Owner] = {}
    for external_id, name, mailbox, active, capacity in OWNERS:
        owners[external_id] = Owner(
            id=_new_uuid(rng),
            external_id=external_id,
            name=name,
            email=f"{mailbox}@example.com",
            active=active,
            capacity=capacity,
            **_stamp(dt.timedelta(hours=1, minutes=len(owners))),
        )
    return owners


def _build_members(
    territories: dict[str, Territory], owners: dict[str, Owner]
) -> list[TerritoryMember]:
    return [
        TerritoryMember(
            territory_id=territories[territory_code].id,
            owner_id=owners[owner_external_id].id,
            role=role,
            weight=weight,
            capacity=capacity,
            **_stamp(dt.timedelta(hours=2, minutes=index)),
        )
        for index, (owner_external_id, territory_code, role, weight, capacity) in enumerate(MEMBERS)
    ]


class _CustomerFactory:
    """Builds the customer pool in insertion order, keeping names and registration ids unique."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._customers: list[Customer] = []
        self._registration_ids: set[str] = set()
        self._name_cores: set[str] = set()

    def build(self) -> list[Customer]:
        for group in GROUPS:
            self._add_group(group)
        # The second entry of a near-duplicate arrives last, as a re-entry months later would.
        firsts = [self._add_near_duplicate_first(pair) for pair in NEAR_DUPLICATES]
        generated = CUSTOMER_COUNT - len(self._customers) - len(NEAR_DUPLICATES)
        for _ in range(generated):
            self._add_generated()
        for pair, first in zip(NEAR_DUPLICATES, firsts, strict=True):
            self._add_near_duplicate_second(pair, first)
        return self._customers

    def _add_group(self, group: Group) -> None:
        rng = self._rng
        root = self._add(
            office=group.root,
            industry=group.industry,
            employees=rng.randint(8_000, 30_000),
            tier="A",
            tags=("key_account", "strategic"),
        )
        for office in group.subsidiaries:
            self._add(
                office=office,
                industry=group.industry,
                employees=rng.randint(150, 3_000),
                parent=root,
            )

    def _add_near_duplicate_first(self, pair: NearDuplicate) -> Customer:
        return self._add(
            office=Office(pair.province, pair.city, pair.first),
            industry=pair.industry,
            employees=self._employees(),
            tags=("open_deal",),
        )

    def _add_near_duplicate_second(self, pair: NearDuplicate, first: Customer) -> None:
        employees = None if first.employees is None else round(first.employees * 1.05)
        self._add(
            office=Office(pair.province, pair.city, pair.second),
            industry=pair.industry,
            employees=employees,
            registered=pair.second_registered,
            tags=("open_deal",),
        )

    def _add_generated(self) -> None:
        rng = self._rng
        province = rng.choices(PROVINCES, weights=[p.weight for p in PROVINCES])[0]
        city_weights = [3] + [1] * (len(province.cities) - 1)
        city = rng.choices(province.cities, weights=city_weights)[0]
        industry = rng.choices(list(INDUSTRIES), [i.weight for i in INDUSTRIES.values()])[0]
        employees = self._employees()
        name = self._company_name(province, city, industry, employees)
        self._add(
            office=Office(province.name, city.name, name),
            industry=industry,
            employees=employees,
            registered=rng.random() >= 0.08,
            industry_known=rng.random() >= 0.02,
        )

    def _employees(self) -> int | None:
        if self._rng.random() < 0.03:
            return None
        return max(5, min(50_000, int(self._rng.lognormvariate(4.6, 1.5))))

    def _company_name(
        self, province: Province, city: City, industry: str, employees: int | None
    ) -> str:
        rng = self._rng
        while True:
            prefix = city.name if rng.random() < 0.8 else province.name
            core = prefix + rng.choice(BRANDS) + rng.choice(INDUSTRIES[industry].words)
            if core not in self._name_cores:
                break
        self._name_cores.add(core)
        large = employees is not None and employees >= 2_000
        suffixes = ("有限公司", "股份有限公司", "集团有限公司")
        return core + rng.choices(suffixes, weights=(3, 4, 3) if large else (17, 3, 0))[0]

    def _add(
        self,
        *,
        office: Office,
        industry: str,
        employees: int | None,
        parent: Customer | None = None,
        tier: str | None = None,
        tags: tuple[str, ...] = (),
        registered: bool = True,
        industry_known: bool = True,
    ) -> Customer:
        province = PROVINCES_BY_NAME[office.province]
        city = province.city(office.city)
        facts = self._facts(office.name, city, industry, employees, tier, tags)
        index = len(self._customers)
        customer = Customer(
            id=_new_uuid(self._rng),
            source=SOURCE,
            external_id=f"C{index + 1:06d}",
            name=office.name,
            country="CN",
            province=province.name,
            city=city.name,
            industry=industry if industry_known else None,
            registration_id=self._registration_id(province) if registered else None,
            parent_id=None if parent is None else parent.id,
            **facts,
            **_stamp(dt.timedelta(days=1, seconds=index * 30)),
        )
        self._customers.append(customer)
        return customer

    def _facts(
        self,
        name: str,
        city: City,
        industry: str,
        employees: int | None,
        tier: str | None,
        tags: tuple[str, ...],
    ) -> dict[str, Any]:
        rng = self._rng
        revenue = None
        if employees is not None:
            scale = rng.lognormvariate(0, 0.6)
            revenue = round(employees * INDUSTRIES[industry].revenue_per_employee * scale, 2)
        tier = tier or _tier(rng, revenue)
        channel = "partner" if rng.random() < 0.25 else "direct"
        return {
            "district": rng.choice(city.districts)
            if city.districts and rng.random() < 0.6
            else None,
            "employees": employees,
            "annual_revenue": revenue,
            "tier": tier,
            "potential_score": _potential_score(rng, tier),
            "tags": _tags(rng, name, industry, employees, tier, channel, tags),
            "attributes": _attributes(rng, channel, employees),
            "last_activity_at": _last_activity_at(rng),
        }

    def _registration_id(self, province: Province) -> str:
        while True:
            candidate = _unified_social_credit_code(self._rng, province.division)
            if candidate not in self._registration_ids:
                self._registration_ids.add(candidate)
                return candidate


def _tier(rng: random.Random, revenue: float | None) -> str:
    if revenue is None:
        return rng.choice(("C", "D"))
    tier = "A" if revenue >= 1.5e9 else "B" if revenue >= 4e8 else "C" if revenue >= 8e7 else "D"
    # Account value is more than revenue: now and then a rep has rated a customer a grade apart.
    if rng.random() < 0.08:
        grades = "ABCD"
        shifted = grades.index(tier) + rng.choice((-1, 1))
        tier = grades[min(3, max(0, shifted))]
    return tier


def _potential_score(rng: random.Random, tier: str) -> int | None:
    if rng.random() < 0.1:
        return None
    base = {"A": 75, "B": 62, "C": 48, "D": 35}[tier]
    return max(0, min(100, round(rng.gauss(base, 15))))


def _tags(
    rng: random.Random,
    name: str,
    industry: str,
    employees: int | None,
    tier: str,
    channel: str,
    given: tuple[str, ...],
) -> list[str]:
    tags = set(given)
    if tier == "A" and rng.random() < 0.7:
        tags.add("key_account")
    if tier in ("A", "B") and rng.random() < 0.25:
        tags.add("strategic")
    if "股份" in name and (employees or 0) >= 500 and rng.random() < 0.5:
        tags.add("listed")
    public_sector = industry in ("energy", "education", "construction", "healthcare")
    if rng.random() < (0.15 if public_sector else 0.03):
        tags.add("government")
    if channel == "partner" and rng.random() < 0.6:
        tags.add("partner")
    for tag, share in (("open_deal", 0.15), ("new", 0.08), ("renewal", 0.1), ("churn_risk", 0.05)):
        if rng.random() < share:
            tags.add(tag)
    return sorted(tags)


def _attributes(rng: random.Random, channel: str, employees: int | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"channel": channel}
    if rng.random() < 0.8:
        attributes["erp"] = rng.choice(ERP_SYSTEMS)
    attributes["has_website"] = rng.random() < (0.9 if (employees or 0) > 50 else 0.6)
    attributes["founded_year"] = rng.randint(1985, 2024)
    return attributes


def _last_activity_at(rng: random.Random) -> dt.datetime | None:
    roll = rng.random()
    if roll < 0.82:
        return BASE_AT - dt.timedelta(seconds=rng.randint(3_600, 180 * 86_400))
    if roll < 0.9:
        return BASE_AT - dt.timedelta(seconds=rng.randint(181 * 86_400, 540 * 86_400))
    return None


def _unified_social_credit_code(rng: random.Random, division: str) -> str:
    """An 18-character 统一社会信用代码 (GB 32100-2015) with valid check characters."""
    area = f"{division}{rng.randint(1, 9):02d}{rng.randint(1, 18):02d}"
    body = "".join(rng.choice(USCC_CHARS) for _ in range(8))
    weighted = sum(
        int(char, 36) * weight for char, weight in zip(body, ORGANIZATION_CODE_WEIGHTS, strict=True)
    )
    organization_check = 11 - weighted % 11
    organization_code = body + {10: "X", 11: "0"}.get(organization_check, str(organization_check))
    head = "91" + area + organization_code
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(head, USCC_WEIGHTS, strict=True))
    return head + USCC_CHARS[-total % 31]
