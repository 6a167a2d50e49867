"""A dry run: the ruleset in force and a candidate over the same profiles, side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from services.risk.domain.rules import Ruleset
from shared.vocabulary import RiskLevel


class Comparison:
    """Add each resident's profile; the report says residents per level under each ruleset,
    how many change level, and the rules whose firing differs most."""

    def __init__(self, current: Ruleset, candidate: Ruleset) -> None:
        self.rulesets = {"current": current, "candidate": candidate}
        self.levels = {name: Counter[str]() for name in self.rulesets}
        self.fires = {name: Counter[str]() for name in self.rulesets}
        self.residents = 0
        self.changed = 0

    def add(self, profile: Mapping[str, Any]) -> None:
        self.residents += 1
        results = {name: ruleset.evaluate(profile) for name, ruleset in self.rulesets.items()}
        for name, result in results.items():
            self.levels[name][result.level.value] += 1
            self.fires[name].update(f.rule_id for f in result.fired)
        self.changed += results["current"].level != results["candidate"].level

    def report(self) -> dict[str, Any]:
        current, candidate = self.fires["current"], self.fires["candidate"]
        rule_ids = dict.fromkeys(
            r.spec.id for ruleset in self.rulesets.values() for r in ruleset.rules
        )
        differing = [
            (rule_id, current[rule_id], candidate[rule_id])
            for rule_id in rule_ids
            if current[rule_id] != candidate[rule_id]
        ]
        differing.sort(key=lambda d: -abs(d[2] - d[1]))
        driving = [{"rule_id": r, "current": c, "candidate": n} for r, c, n in differing]
        every_level = [level.value for level in RiskLevel]
        return {
            "residents": self.residents,
            **{
                name: {
                    "version": ruleset.version,
                    "levels": {lvl: self.levels[name][lvl] for lvl in every_level},
                }
                for name, ruleset in self.rulesets.items()
            },
            "residents_changing_level": self.changed,
            "rules_driving_the_difference": driving,
        }
