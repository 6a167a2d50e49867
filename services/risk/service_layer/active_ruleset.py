"""The rulesets in force, as each process evaluates with them: each council's own where it
has chosen one, the deployment's default for every other council.

Only rulesets that load cleanly are ever stored, and a process keeps its last good ruleset
(for the default, or for a council) if the one in force cannot be loaded (for example after
a code change): it never runs none. The default is installed by ``migrate`` (see
``rulesets.install_default_ruleset``), so a read never writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters import rulesets as stored_rulesets
from services.risk.domain.rules import Ruleset, RulesetError, load_ruleset

log = logging.getLogger(__name__)

_KEPT = 64
"""How many loaded rulesets a process keeps (a deployment has a few: one a council at most)."""


class NoActiveRuleset(RuntimeError):
    """No ruleset is in force: the database was not migrated with ``migrate``."""


class ActiveRuleset:
    """Per process: the rulesets in force, each loaded once and kept while it stays in force
    (its remembered decisions with it), reloaded when another process activates a new one."""

    def __init__(self) -> None:
        self._loaded: dict[str, Ruleset] = {}  # by version
        self._last_good: dict[str | None, Ruleset] = {}  # by council; None: the default

    async def current(self, session: AsyncSession) -> Ruleset:
        """The deployment's default ruleset."""
        version = await stored_rulesets.active_version(session)
        if version is None:
            raise _none_active()
        return await self._load(session, None, version)

    async def for_council(self, session: AsyncSession, council: str) -> Ruleset:
        """The ruleset in force for one council."""
        return (await self.for_councils(session, [council]))[council]

    async def for_councils(
        self, session: AsyncSession, councils: Sequence[str]
    ) -> dict[str, Ruleset]:
        """The ruleset in force for each council, found in one look-up."""
        versions = await stored_rulesets.versions_in_force(session, list(dict.fromkeys(councils)))
        if len(versions) < len(set(councils)):
            raise _none_active()
        return {
            council: await self._load(session, council, version)
            for council, version in versions.items()
        }

    async def _load(self, session: AsyncSession, council: str | None, version: str) -> Ruleset:
        ruleset = self._loaded.get(version)
        if ruleset is None:
            stored = await stored_rulesets.get(session, version)
            try:
                ruleset = load_ruleset(stored.source if stored else "")
            except RulesetError as exc:
                kept = self._last_good.get(council) or self._last_good.get(None)
                if kept is None:
                    raise
                log.error(
                    "ruleset in force cannot be loaded; keeping the last good one",
                    extra={
                        "version": version,
                        "council": council,
                        "errors": exc.errors,
                        "keeping": kept.version,
                    },
                )
                return kept
            if len(self._loaded) >= _KEPT:
                self._loaded.clear()
            self._loaded[version] = ruleset
        self._last_good[council] = ruleset
        return ruleset


def _none_active() -> NoActiveRuleset:
    return NoActiveRuleset("no ruleset is active: run migrate, which installs the default")


# One per process: the API and the worker each evaluate with the rulesets in force.
ACTIVE_RULESET = ActiveRuleset()
