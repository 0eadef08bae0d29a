"""Loading the demo data set into an empty database."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.duplicates import detect_duplicates
from territory_service.customers.models import Customer
from territory_service.demo.dataset import build_demo_dataset
from territory_service.demo.ruleset import build_demo_ruleset
from territory_service.owners.models import Owner
from territory_service.territories.models import Territory

logger = logging.getLogger(__name__)


async def load_demo_data(session: AsyncSession) -> bool:
    """Insert the demo data set unless the database already holds data. Returns whether it did."""
    async with session.begin():
        for model in (Territory, Owner, Customer):
            if (await session.execute(select(func.count()).select_from(model))).scalar_one():
                logger.info("demo data not loaded: the database is not empty")
                return False
        dataset = build_demo_dataset()
        # Parents come before children in every list, so one flush per list keeps foreign keys
        # satisfied on both backends.
        ruleset, rules = build_demo_ruleset(dataset)
        for rows in (
            dataset.territories,
            dataset.owners,
            dataset.members,
            dataset.pool_rules,
            dataset.customers,
            [ruleset],
            rules,
        ):
            session.add_all(rows)
            await session.flush()
    logger.info(
        "demo data loaded",
        extra={
            "territories": len(dataset.territories),
            "owners": len(dataset.owners),
            "customers": len(dataset.customers),
        },
    )
    return True


async def flag_demo_duplicates(session: AsyncSession) -> int:
    """Once the demo customers are resolved: log the companies entered twice under different
    owners (撞单), as creating them one by one through the API would have. Returns how many
    customers have a duplicate."""
    async with session.begin():
        customers = list((await session.execute(select(Customer))).scalars())
        return len(await detect_duplicates(session, customers))
