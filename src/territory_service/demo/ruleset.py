"""The demo's active rule set: regions by province, a strategic-accounts rule, an industry
carve-out, and an overlap that shows a logged tie.

西藏 is left out of the regional rules on purpose, so the demo shows a coverage gap (no_match).
"""

from __future__ import annotations

from typing import Any

from territory_service.demo.catalog import PROVINCES, REGIONS
from territory_service.demo.dataset import DemoDataset
from territory_service.engine.ruleset import TiePolicy
from territory_service.ids import new_id
from territory_service.rulesets.models import RuleRow, RuleSet, RuleSetState

UNCOVERED_PROVINCE = "西藏"


def _where(*predicates: dict[str, Any]) -> dict[str, Any]:
    return {"any_of": [{"all_of": list(predicates)}]}


def build_demo_ruleset(dataset: DemoDataset) -> tuple[RuleSet, list[RuleRow]]:
    territory = {t.name: t for t in dataset.territories}
    owner = {o.external_id: o for o in dataset.owners}
    ruleset = RuleSet(
        id=new_id(),
        number=1,
        name="2026 区域划分",
        description="Regions by province, strategic accounts and a finance carve-out.",
        state=RuleSetState.ACTIVE,
        default_territory_id=territory["全国"].id,
        tie_policy=TiePolicy.FIRST_CREATED,
        activated_at=dataset.territories[0].created_at,
    )
    rules: list[tuple[str, int, dict[str, Any], str, str | None]] = [
        (
            "战略客户: strategic and large",
            5,
            _where(
                {"field": "tags", "op": "contains_any", "value": ["strategic"]},
                {"field": "employees", "op": "gte", "value": 1000},
            ),
            "全国",
            "team-east-ka",
        ),
        (
            "金融行业 A/B 客户",
            20,
            _where(
                {"field": "industry", "op": "eq", "value": "finance"},
                {"field": "tier", "op": "in", "value": ["A", "B"]},
            ),
            "华北",
            None,
        ),
        (
            "政府客户",
            20,
            _where({"field": "tags", "op": "contains_any", "value": ["government"]}),
            "华东",
            None,
        ),
    ]
    for code, region, _ in REGIONS:
        provinces = [
            p.name for p in PROVINCES if p.region_code == code and p.name != UNCOVERED_PROVINCE
        ]
        condition = _where({"field": "province", "op": "in", "value": provinces})
        rules.append((f"{region} 区域", 100, condition, region, None))
    rows = [
        RuleRow(
            ruleset_id=ruleset.id,
            name=name,
            priority=priority,
            condition=condition,
            territory_id=territory[target].id,
            owner_id=owner[named].id if named else None,
            position=position,
        )
        for position, (name, priority, condition, target, named) in enumerate(rules)
    ]
    return ruleset, rows
