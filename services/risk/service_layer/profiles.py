"""Profiles: when the referrals service merges two records of one resident, their profiles
become one, so signals held under either key set count for the person."""

from __future__ import annotations

from dataclasses import dataclass

from services.risk.adapters import merged_profiles as merged_db
from services.risk.adapters import profiles as profiles_db
from services.risk.service_layer.unit_of_work import RiskUnitOfWork


@dataclass(frozen=True)
class ResidentsMerge:
    council: str
    merged_keys: tuple[str, ...]
    into_keys: tuple[str, ...]


async def relink_profiles(uow: RiskUnitOfWork, merge: ResidentsMerge) -> str | None:
    """The profile that holds both key sets now (the one of the record kept, when known);
    None when neither record has a profile yet (the next signal or case creates one from
    either key set, and the merge's keys are not needed before then)."""
    keys = [*merge.into_keys, *merge.merged_keys]
    async with uow.transaction():
        await profiles_db.lock_council(uow.session, merge.council)
        known = await merged_db.profiles_of_keys(uow.session, keys)
        found = [known[k] for k in keys if k in known]
        if not found:
            return None
        survivor = found[0]
        others = sorted(set(found) - {survivor})
        await merged_db.fold_profiles(uow.session, survivor, others, keys)
    return survivor
