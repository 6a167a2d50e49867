"""The ruleset in force, as each process evaluates with it.

Only rulesets that load cleanly are ever stored, and a process keeps its last good ruleset if
the active one cannot be loaded (for example after a code change): it never runs none. The
default is installed by ``migrate`` (see ``rulesets.install_default_ruleset``), so a read never
writes.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters import rulesets as stored_rulesets
from services.risk.domain.rules import Ruleset, RulesetError, load_ruleset

log = logging.getLogger(__name__)


class NoActiveRuleset(RuntimeError):
    """No ruleset is in force: the database was not migrated with ``migrate``."""


class ActiveRuleset:
    """Per process: the ruleset in force, reloaded when another process activates a new one."""

    def __init__(self) -> None:
        self._current: Ruleset | None = None

    async def current(self, session: AsyncSession) -> Ruleset:
        version = await stored_rulesets.active_version(session)
        if version is None:
            raise NoActiveRuleset("no ruleset is active: run migrate, which installs the default")
        if self._current is not None and self._current.version == version:
            return self._current
        stored = await stored_rulesets.get(session, version)
        try:
            self._current = load_ruleset(stored.source if stored else "")
        except RulesetError as exc:
            if self._current is None:
                raise
            log.error(
                "active ruleset cannot be loaded; keeping the last good one",
                extra={"version": version, "errors": exc.errors, "keeping": self._current.version},
            )
        return self._current


# One per process: the API and the worker each evaluate with the ruleset in force.
ACTIVE_RULESET = ActiveRuleset()
