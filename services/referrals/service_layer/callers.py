"""Who is calling a use case, as the case timeline records them."""

from __future__ import annotations

from services.referrals.domain.actors import Actor
from shared.auth import Principal


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.name or principal.subject, principal.organisation)
