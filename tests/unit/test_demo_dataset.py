"""The demo data set is deterministic, realistic in shape, and fits the database's constraints."""

import datetime as dt
import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import inspect

from territory_service.demo.dataset import BASE_AT, DemoDataset, build_demo_dataset
from territory_service.models import Customer, Territory
from territory_service.territories.models import DistributionStrategy, MemberRole

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LEGAL_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "coltd")


@pytest.fixture(scope="module")
def dataset() -> DemoDataset:
    return build_demo_dataset()


def column_values(row: object) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def territories_by_level(
    dataset: DemoDataset,
) -> tuple[Territory, list[Territory], list[Territory]]:
    (root,) = [t for t in dataset.territories if t.parent_id is None]
    regions = [t for t in dataset.territories if t.parent_id == root.id]
    region_ids = {region.id for region in regions}
    provinces = [t for t in dataset.territories if t.parent_id in region_ids]
    return root, regions, provinces


def region_of_province(dataset: DemoDataset) -> dict[str, str]:
    _, regions, provinces = territories_by_level(dataset)
    region_names = {region.id: region.name for region in regions}
    return {p.name: region_names[p.parent_id] for p in provinces if p.parent_id is not None}


def normalized_name(name: str) -> str:
    """Roughly what a duplicate detector compares: width, case, punctuation, legal form folded."""
    folded = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", name).casefold())
    for suffix in LEGAL_SUFFIXES:
        if folded.endswith(suffix):
            return folded.removesuffix(suffix)
    return folded


def has_valid_check_character(code: str) -> bool:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS, strict=True))
    return code[17] == USCC_CHARS[-total % 31]


def test_building_twice_gives_identical_rows() -> None:
    first, second = build_demo_dataset(), build_demo_dataset()

    for kind in ("territories", "owners", "members", "customers"):
        rows_a, rows_b = getattr(first, kind), getattr(second, kind)
        assert [column_values(row) for row in rows_a] == [column_values(row) for row in rows_b]


def test_another_seed_gives_other_ids_and_customers() -> None:
    first, other = build_demo_dataset(), build_demo_dataset(seed=7)

    assert first.territories[0].id != other.territories[0].id
    assert [c.name for c in first.customers] != [c.name for c in other.customers]


def test_territory_tree_is_china_its_seven_regions_and_every_province(
    dataset: DemoDataset,
) -> None:
    root, regions, provinces = territories_by_level(dataset)

    assert (root.code, root.name) == ("CN", "全国")
    assert {r.name for r in regions} == {"华北", "东北", "华东", "华中", "华南", "西南", "西北"}
    assert len(provinces) >= 31
    assert {"北京", "上海", "内蒙古", "黑龙江", "新疆", "西藏"} <= {p.name for p in provinces}
    assert len(dataset.territories) == 1 + len(regions) + len(provinces)
    assert all(t.code and t.code.startswith("CN") and t.description for t in dataset.territories)
    assert len({t.code for t in dataset.territories}) == len(dataset.territories)


def test_provinces_belong_to_their_standard_region(dataset: DemoDataset) -> None:
    regions = region_of_province(dataset)

    assert regions["上海"] == regions["山东"] == regions["福建"] == "华东"
    assert regions["内蒙古"] == "华北"
    assert regions["广西"] == regions["海南"] == "华南"
    assert regions["西藏"] == "西南"
    assert regions["新疆"] == "西北"


def test_territories_list_parents_before_children(dataset: DemoDataset) -> None:
    seen: set[uuid.UUID] = set()
    for territory in dataset.territories:
        assert territory.parent_id is None or territory.parent_id in seen
        seen.add(territory.id)


def test_territories_mix_distribution_strategies(dataset: DemoDataset) -> None:
    strategies = Counter(t.strategy for t in dataset.territories)

    assert set(strategies) == set(DistributionStrategy)
    assert strategies.most_common(1)[0][0] == DistributionStrategy.ROUND_ROBIN


def test_owners_are_reps_and_team_queues_some_inactive(dataset: DemoDataset) -> None:
    owners = dataset.owners

    assert 15 <= len(owners) <= 25
    assert len({o.external_id for o in owners}) == len(owners)
    assert 1 <= sum(not o.active for o in owners) <= 2
    assert any(o.capacity is None for o in owners)
    assert all(150 <= o.capacity <= 500 for o in owners if o.capacity is not None)
    assert any(o.name.endswith("组") for o in owners)
    assert all(o.email and re.fullmatch(r"[a-z-]+@example\.com", o.email) for o in owners)


def test_every_region_has_a_manager_and_members(dataset: DemoDataset) -> None:
    _, regions, _ = territories_by_level(dataset)
    roles: dict[uuid.UUID, list[MemberRole]] = defaultdict(list)
    for member in dataset.members:
        roles[member.territory_id].append(member.role)

    for region in regions:
        assert roles[region.id].count(MemberRole.MANAGER) >= 1, region.name
        assert 1 <= roles[region.id].count(MemberRole.MEMBER) <= 3, region.name


def test_members_join_known_owners_and_territories_once(dataset: DemoDataset) -> None:
    territory_ids = {t.id for t in dataset.territories}
    owner_ids = {o.id for o in dataset.owners}
    keys = [(m.territory_id, m.owner_id) for m in dataset.members]

    assert len(set(keys)) == len(keys)
    assert all(t in territory_ids and o in owner_ids for t, o in keys)
    assert all(1 <= m.weight <= 3 for m in dataset.members)
    assert any(m.capacity is not None for m in dataset.members)
    assert all(m.capacity is None or m.capacity >= 0 for m in dataset.members)


def test_pool_has_about_two_thousand_customers(dataset: DemoDataset) -> None:
    assert 1_800 <= len(dataset.customers) <= 2_200


def test_every_customer_lives_in_a_province_territory(dataset: DemoDataset) -> None:
    _, _, provinces = territories_by_level(dataset)
    province_names = {p.name for p in provinces}
    customers = dataset.customers

    assert all(c.province in province_names and c.city and c.country == "CN" for c in customers)
    assert set(Counter(c.province for c in customers)) == province_names
    assert any(c.district for c in customers)


def test_external_ids_are_unique_per_source(dataset: DemoDataset) -> None:
    keys = [(c.source, c.external_id) for c in dataset.customers]

    assert len(set(keys)) == len(keys)
    assert all(source == "demo-crm" and re.fullmatch(r"C\d{6}", key) for source, key in keys)


def test_registration_ids_are_unique_well_formed_and_mostly_present(
    dataset: DemoDataset,
) -> None:
    codes = [c.registration_id for c in dataset.customers if c.registration_id is not None]

    assert len(set(codes)) == len(codes)
    assert 0.8 * len(dataset.customers) <= len(codes) < len(dataset.customers)
    for code in codes:
        assert re.fullmatch(f"[{USCC_CHARS}]{{18}}", code), code
        assert has_valid_check_character(code), code


def test_subsidiaries_point_to_an_earlier_group_root(dataset: DemoDataset) -> None:
    seen: dict[uuid.UUID, Customer] = {}
    for customer in dataset.customers:
        if customer.parent_id is not None:
            assert customer.parent_id in seen, customer.name
            assert seen[customer.parent_id].parent_id is None
        seen[customer.id] = customer


def test_at_least_five_groups_span_several_regions(dataset: DemoDataset) -> None:
    regions = region_of_province(dataset)
    by_id = {c.id: c for c in dataset.customers}
    group_regions: dict[uuid.UUID, set[str]] = defaultdict(set)
    for customer in dataset.customers:
        if customer.parent_id is not None:
            root = by_id[customer.parent_id]
            group_regions[root.id] |= {regions[str(root.province)], regions[str(customer.province)]}

    assert 5 <= len(group_regions) <= 8
    assert sum(len(spanned) >= 2 for spanned in group_regions.values()) >= 5
    children = Counter(c.parent_id for c in dataset.customers if c.parent_id is not None)
    assert all(2 <= count <= 5 for count in children.values())


def test_names_are_unique_apart_from_deliberate_near_duplicate_pairs(
    dataset: DemoDataset,
) -> None:
    names = [c.name for c in dataset.customers]
    by_normalized: dict[str, list[Customer]] = defaultdict(list)
    for customer in dataset.customers:
        by_normalized[normalized_name(customer.name)].append(customer)
    pairs = [group for group in by_normalized.values() if len(group) > 1]

    assert len(set(names)) == len(names)
    assert 5 <= len(pairs) <= 10
    for first, second in pairs:
        assert (first.province, first.city) == (second.province, second.city)
        assert first.registration_id != second.registration_id or first.registration_id is None
    assert any(None in (first.registration_id, second.registration_id) for first, second in pairs)


def test_customer_fields_fit_the_database_limits(dataset: DemoDataset) -> None:
    for c in dataset.customers:
        assert 0 < len(c.name) <= 200
        assert len(c.external_id) <= 128
        for text in (c.country, c.province, c.city, c.district, c.industry):
            assert text is None or len(text) <= 64
        assert c.tier is None or len(c.tier) <= 32
        assert c.registration_id is None or len(c.registration_id) <= 64
        assert c.employees is None or 0 <= c.employees <= 50_000
        assert c.potential_score is None or 0 <= c.potential_score <= 100
        assert c.annual_revenue is None or c.annual_revenue >= 0
        assert c.annual_revenue is None or round(c.annual_revenue, 2) == c.annual_revenue
        assert all(isinstance(tag, str) for tag in c.tags)
        assert c.tags == sorted(set(c.tags))
        assert all(isinstance(key, str) for key in c.attributes)
        assert all(isinstance(value, str | int | float | bool) for value in c.attributes.values())


def test_customer_facts_look_like_a_real_crm(dataset: DemoDataset) -> None:
    customers = dataset.customers
    tiers = Counter(c.tier for c in customers)
    employees = sorted(c.employees for c in customers if c.employees is not None)

    assert set(tiers) == {"A", "B", "C", "D"}
    assert tiers["C"] + tiers["D"] > 0.6 * len(customers)
    assert tiers["A"] < tiers["B"] < tiers["C"] < tiers["D"]
    assert employees[0] >= 5
    assert employees[-1] > 10_000
    assert employees[len(employees) // 2] < 500
    assert len({c.industry for c in customers}) >= 10
    assert any(c.potential_score is None for c in customers)
    assert {"strategic", "key_account", "open_deal", "partner"} <= {
        t for c in customers for t in c.tags
    }
    assert {c.attributes["channel"] for c in customers} == {"direct", "partner"}


def test_most_customers_had_activity_in_the_last_180_days(dataset: DemoDataset) -> None:
    window = BASE_AT - dt.timedelta(days=180)
    recent = [
        c
        for c in dataset.customers
        if c.last_activity_at is not None and window <= c.last_activity_at <= BASE_AT
    ]

    assert len(recent) > 0.7 * len(dataset.customers)


def test_rows_carry_utc_timestamps_and_start_at_version_one(dataset: DemoDataset) -> None:
    rows: list[Any] = [*dataset.territories, *dataset.owners, *dataset.members, *dataset.customers]

    for row in rows:
        assert row.version == 1
        assert row.created_at.utcoffset() == dt.timedelta(0)
        assert row.updated_at == row.created_at
    for customer in dataset.customers:
        at = customer.last_activity_at
        assert at is None or at.utcoffset() == dt.timedelta(0)
