"""The active ruleset: stored versions, activation, and the copy each process evaluates with.

Only rulesets that load cleanly are ever stored, and a process keeps its last good ruleset
if the active one cannot be loaded (for example after a code change): it never runs none.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import cases, rulesets, signals
from services.risk.domain.rules import (
    ReferralFacts,
    Ruleset,
    RulesetError,
    SignalFact,
    build_profile,
    load_ruleset,
)
from services.risk.domain.signals import SignalType
from shared.events.envelope import utc_now
from shared.vocabulary import RiskLevel

log = logging.getLogger(__name__)

DEFAULT_RULESET = Path(__file__).parent / "rulesets" / "default.yaml"


async def store(session: AsyncSession, source: str, *, created_by: str) -> Ruleset:
    """Validate (RulesetError naming each rule at fault) and keep a ruleset, inactive."""
    ruleset = load_ruleset(source)
    await session.execute(
        insert(rulesets)
        .values(
            version=ruleset.version,
            label=ruleset.spec.label,
            source=source,
            created_by=created_by,
        )
        .on_conflict_do_nothing()
    )
    return ruleset


async def activate(session: AsyncSession, version: str) -> bool:
    exists = await session.scalar(select(rulesets.c.version).where(rulesets.c.version == version))
    if exists is None:
        return False
    await session.execute(update(rulesets).where(rulesets.c.active).values(active=False))
    await session.execute(
        update(rulesets)
        .where(rulesets.c.version == version)
        .values(active=True, activated_at=utc_now())
    )
    return True


class Rulebook:
    """Per process: the ruleset in force, reloaded when another process activates a new one."""

    def __init__(self) -> None:
        self._current: Ruleset | None = None

    async def current(self, session: AsyncSession) -> Ruleset:
        version = await session.scalar(select(rulesets.c.version).where(rulesets.c.active))
        if version is None:
            version = await self._install_default(session)
        if self._current is not None and self._current.version == version:
            return self._current
        source = await session.scalar(
            select(rulesets.c.source).where(rulesets.c.version == version)
        )
        try:
            self._current = load_ruleset(source or "")
        except RulesetError as exc:
            if self._current is None:
                raise
            log.error(
                "active ruleset cannot be loaded; keeping the last good one",
                extra={"version": version, "errors": exc.errors, "keeping": self._current.version},
            )
        return self._current

    @staticmethod
    async def _install_default(session: AsyncSession) -> str:
        ruleset = await store(session, DEFAULT_RULESET.read_text(), created_by="upstream default")
        await activate(session, ruleset.version)
        log.info("default ruleset installed", extra={"version": ruleset.version})
        return ruleset.version


# One per process: the API and the worker each evaluate with the ruleset in force.
RULEBOOK = Rulebook()


async def dry_run(
    session: AsyncSession, current: Ruleset, candidate: Ruleset, *, today: date
) -> dict[str, Any]:
    """Both rulesets over every stored profile (its signals, and its open case's referral):
    residents per level under each, and the rules whose firing differs most."""
    levels = {name: Counter[str]() for name in ("current", "candidate")}
    fires = {name: Counter[str]() for name in ("current", "candidate")}
    changed = residents = 0
    referral_by_profile = dict(
        (
            await session.execute(select(cases.c.profile_id, cases.c.referral).where(cases.c.open))
        ).all()
    )
    rows = await session.stream(
        select(
            signals.c.profile_id,
            signals.c.type,
            signals.c.attributes,
            signals.c.observed_on,
            signals.c.expires_on,
        ).order_by(signals.c.profile_id)
    )
    async for profile_id, facts in _grouped(rows):
        residents += 1
        view = build_profile(
            facts, ReferralFacts.from_json(referral_by_profile.get(profile_id)), today=today
        )
        results = {"current": current.evaluate(view), "candidate": candidate.evaluate(view)}
        for name, result in results.items():
            levels[name][result.level.value] += 1
            fires[name].update(f.rule_id for f in result.fired)
        changed += results["current"].level != results["candidate"].level
    rule_ids = dict.fromkeys(
        [*(r.spec.id for r in current.rules), *(r.spec.id for r in candidate.rules)]
    )
    driving = sorted(
        (
            {
                "rule_id": rule_id,
                "current": fires["current"][rule_id],
                "candidate": fires["candidate"][rule_id],
            }
            for rule_id in rule_ids
            if fires["current"][rule_id] != fires["candidate"][rule_id]
        ),
        key=lambda d: -abs(d["candidate"] - d["current"]),
    )
    every_level = [level.value for level in RiskLevel]
    return {
        "residents": residents,
        "current": {
            "version": current.version,
            "levels": {lvl: levels["current"][lvl] for lvl in every_level},
        },
        "candidate": {
            "version": candidate.version,
            "levels": {lvl: levels["candidate"][lvl] for lvl in every_level},
        },
        "residents_changing_level": changed,
        "rules_driving_the_difference": driving,
    }


async def _grouped(rows: Any) -> AsyncIterator[tuple[str, list[SignalFact]]]:
    profile: str | None = None
    facts: list[SignalFact] = []
    async for row in rows:
        if row.profile_id != profile and profile is not None:
            yield profile, facts
            facts = []
        profile = row.profile_id
        facts.append(
            SignalFact(SignalType(row.type), row.attributes, row.observed_on, row.expires_on)
        )
    if profile is not None:
        yield profile, facts
