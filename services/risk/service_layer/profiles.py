"""Profiles: when the referrals service merges two records of one resident, their profiles
become one, so signals held under either key set count for the person; when the merge is
undone, they are split again."""

from __future__ import annotations

from dataclasses import dataclass

from services.risk.adapters import merged_profiles as merged_db
from services.risk.adapters import profiles as profiles_db
from services.risk.domain.signals import stored_fingerprint
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


@dataclass(frozen=True)
class ResidentsUnmerge:
    council: str
    restored_keys: tuple[str, ...]
    into_keys: tuple[str, ...]
    restored_case_ids: tuple[str, ...] = ()
    reopened_case_id: str | None = None


async def split_profiles(uow: RiskUnitOfWork, unmerge: ResidentsUnmerge) -> str | None:
    """A merge undone: the restored record's own keys (those the other record does not give
    too), its cases with their assessments, and the signals sent under one of its own keys
    leave the folded profile for a profile of its own; the rest stays. Safe to run twice:
    the second run finds the restored keys on their own profile already and moves nothing.
    The restored record's profile, or None when the folded profile is unknown."""
    own = [k for k in dict.fromkeys(unmerge.restored_keys) if k not in unmerge.into_keys]
    async with uow.transaction():
        session = uow.session
        await profiles_db.lock_council(session, unmerge.council)
        known = await merged_db.profiles_of_keys(session, [*unmerge.into_keys, *own])
        folded = next((known[k] for k in unmerge.into_keys if k in known), None)
        if folded is None or not own:
            return None  # nothing was folded, or nothing tells the two apart
        restored = next((known[k] for k in own if k in known and known[k] != folded), None)
        if restored is None:
            restored = uow.new_id()
            await merged_db.new_profile(session, restored, unmerge.council)
        await merged_db.take_keys(session, own, into=restored, from_profile=folded)
        await merged_db.take_cases(
            session, list(unmerge.restored_case_ids), into=restored, from_profile=folded
        )
        if unmerge.reopened_case_id is not None:
            await merged_db.reopen_case(session, unmerge.reopened_case_id)
        theirs = [
            signal["id"]
            for signal in await merged_db.signals_of(session, folded)
            if any(stored_fingerprint(k, signal) == signal["fingerprint"] for k in own)
        ]
        await merged_db.move_signals(session, theirs, into=restored)
    return restored
