"""Rulesets, for operators: every version and its history, a proposal checked before it is
stored, a dry run of a stored one against the ruleset in force over the stored data, and
activation: as the deployment's default, or for one council (each council can have its own
ruleset in force; the default applies to every council without one). The default ruleset is
installed by ``migrate``; the transparency record is made from the ruleset in force.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters import cases as stored_cases
from services.risk.adapters import rulesets as stored_rulesets
from services.risk.adapters import signals as stored_signals
from services.risk.adapters.rulesets import StoredRuleset
from services.risk.domain.dry_run import Comparison
from services.risk.domain.rules import RulesetError, build_profile, load_ruleset
from services.risk.domain.transparency import transparency_record
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.errors import Invalid, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import RuleReach, RulesetDryRunCompleted
from shared.vocabulary import RiskLevel

log = logging.getLogger(__name__)

DEFAULT_RULESET = Path(__file__).parents[1] / "rulesets" / "default.yaml"
DEFAULT_AUTHOR = "upstream default"


async def install_default_ruleset(session: AsyncSession) -> None:
    """The seed ``migrate`` runs: store the default ruleset and put it in force, unless a
    ruleset is in force already (so running it again, or after an operator's choice, changes
    nothing)."""
    if await stored_rulesets.active_version(session) is not None:
        return
    source = DEFAULT_RULESET.read_text()
    ruleset = load_ruleset(source)
    await stored_rulesets.add(
        session,
        version=ruleset.version,
        label=ruleset.spec.label,
        source=source,
        created_by=DEFAULT_AUTHOR,
    )
    await stored_rulesets.activate(session, ruleset.version, at=utc_now())
    log.info("default ruleset installed", extra={"version": ruleset.version})


async def list_rulesets(uow: RiskUnitOfWork) -> list[StoredRuleset]:
    """Every ruleset, newest first."""
    return await stored_rulesets.newest_first(uow.session)


async def get_ruleset(uow: RiskUnitOfWork, version: str) -> StoredRuleset:
    stored = await stored_rulesets.get(uow.session, version)
    if stored is None:
        raise NotFound("no such ruleset")
    return stored


async def current_ruleset(uow: RiskUnitOfWork) -> StoredRuleset:
    """The ruleset in force, as stored."""
    async with uow.snapshot():
        return await _in_force(uow)


async def _in_force(uow: RiskUnitOfWork) -> StoredRuleset:
    ruleset = await uow.ruleset_in_force()
    return await get_ruleset(uow, ruleset.version)


async def propose_ruleset(uow: RiskUnitOfWork, source: str, *, created_by: str) -> StoredRuleset:
    """Check a ruleset (Invalid names each rule at fault) and store it, not yet in force."""
    try:
        ruleset = load_ruleset(source)
    except RulesetError as exc:
        raise Invalid.of(
            [("ruleset", e) for e in exc.errors],
            detail="the ruleset was refused; the ruleset in force is unchanged",
        ) from None
    async with uow.transaction():
        await stored_rulesets.add(
            uow.session,
            version=ruleset.version,
            label=ruleset.spec.label,
            source=source,
            created_by=created_by,
        )
    return await get_ruleset(uow, ruleset.version)


async def activate_ruleset(uow: RiskUnitOfWork, version: str) -> StoredRuleset:
    """Make a stored ruleset the deployment's default, in force for every council without a
    ruleset of its own (every process picks it up on its next evaluation)."""
    async with uow.transaction():
        if not await stored_rulesets.activate(uow.session, version, at=uow.now()):
            raise NotFound("no such ruleset")
    return await get_ruleset(uow, version)


async def dry_run_ruleset(
    uow: RiskUnitOfWork, version: str, *, council: str | None = None
) -> dict[str, Any]:
    """A stored ruleset and the one in force over every stored profile (its signals, and its
    open case's referral): residents per level under each, the rules driving the difference.
    For one council: against the ruleset in force for it, over its profiles only; its
    figures are published too (``risk.ruleset.dry_run_completed``, through the outbox in
    this transaction), so the council's rule evaluation shows them beside what its flags led
    to."""
    async with uow.transaction() as session:
        candidate = load_ruleset((await get_ruleset(uow, version)).source)
        in_force = await (uow.ruleset_in_force() if council is None else uow.ruleset_for(council))
        comparison = Comparison(in_force, candidate)
        ran_at = uow.now()
        referrals = await stored_cases.open_referrals(session, council)
        async for profile_id, facts in stored_signals.facts_by_profile(session, council):
            comparison.add(build_profile(facts, referrals.get(profile_id), today=ran_at.date()))
        if council is not None:
            event = dry_run_completed(comparison, council=council, ran_at=ran_at)
            await uow.outbox.add(session, event, subject=council)
    return comparison.report()


def dry_run_completed(
    comparison: Comparison, *, council: str, ran_at: datetime
) -> RulesetDryRunCompleted:
    """A council's dry run as its event: residents per level under each ruleset and, for
    every rule of either, the residents it fires for under each (the report lists only the
    rules whose firing differs; a council reads the others' reach too). Counts only."""
    in_force, candidate = comparison.rulesets["current"], comparison.rulesets["candidate"]
    fires_in_force, fires_candidate = comparison.fires["current"], comparison.fires["candidate"]
    rule_ids = dict.fromkeys(r.spec.id for ruleset in (in_force, candidate) for r in ruleset.rules)
    return RulesetDryRunCompleted(
        council=council,
        candidate_version=candidate.version,
        in_force_version=in_force.version,
        ran_at=ran_at,
        residents=comparison.residents,
        residents_changing_level=comparison.changed,
        levels_in_force={level: comparison.levels["current"][level.value] for level in RiskLevel},
        levels_candidate={
            level: comparison.levels["candidate"][level.value] for level in RiskLevel
        },
        rules=[
            RuleReach(
                rule_id=rule_id,
                in_force=fires_in_force[rule_id],
                candidate=fires_candidate[rule_id],
            )
            for rule_id in rule_ids
        ],
    )


async def transparency(uow: RiskUnitOfWork) -> str:
    """The algorithmic transparency record (Markdown), made from the ruleset in force."""
    ruleset = await uow.ruleset_in_force()
    return transparency_record(ruleset, today=uow.now().date())


# -- per council ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouncilRuleset:
    """The ruleset in force for a council: its own (chosen when, by whom), or the default."""

    council: str
    ruleset: StoredRuleset
    own: bool
    chosen_by: str | None = None
    chosen_at: datetime | None = None


async def ruleset_of_council(uow: RiskUnitOfWork, council: str) -> CouncilRuleset:
    async with uow.snapshot():  # the council's choice and the ruleset of one moment
        choice = await stored_rulesets.choice_of(uow.session, council)
        if choice is None:
            return CouncilRuleset(council, await _in_force(uow), own=False)
        return CouncilRuleset(
            council,
            await get_ruleset(uow, choice.version),
            own=True,
            chosen_by=choice.activated_by,
            chosen_at=choice.activated_at,
        )


async def activate_for_council(
    uow: RiskUnitOfWork, council: str, version: str, *, by: str
) -> CouncilRuleset:
    """Put a stored ruleset in force for one council: its referrals and residents are
    assessed by it from the next evaluation on; other councils' rules do not change."""
    async with uow.transaction():
        if await stored_rulesets.get(uow.session, version) is None:
            raise NotFound("no such ruleset")
        await stored_rulesets.choose_for_council(uow.session, council, version, by=by, at=uow.now())
    log.info("council ruleset activated", extra={"council": council, "version": version})
    return await ruleset_of_council(uow, council)


async def use_default_for_council(uow: RiskUnitOfWork, council: str) -> CouncilRuleset:
    """The council goes back to the deployment's default ruleset."""
    async with uow.transaction():
        if not await stored_rulesets.forget_council_choice(uow.session, council):
            raise NotFound("this council has no ruleset of its own: it uses the default")
    return await ruleset_of_council(uow, council)
