"""Resident identity: normalising what people type, and the pseudonymous resident key.

The referrals and risk services derive the same keys from the same identifiers with a
secret per deployment (``UPSTREAM_RESIDENT_KEY_SECRET``), so the risk service can hold
signals about a resident without holding who they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The letters each position may hold (Q, V and X never start a postcode, and so on).
_POSTCODE = re.compile(
    r"^(GIR0AA|(?:[A-PR-UWYZ][0-9][0-9A-HJKPSTUW]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRV-Y]?)"
    r"[0-9][ABD-HJLNP-UW-Z]{2})$"
)


def normalise_postcode(raw: str) -> str:
    """``" e15 4ht "`` -> ``"E15 4HT"``; ValueError when it is not a UK postcode."""
    compact = re.sub(r"\s+", "", raw).upper()
    if not _POSTCODE.match(compact):
        raise ValueError(f"{raw.strip()!r} is not a UK postcode (for example E15 4HT)")
    return f"{compact[:-3]} {compact[-3:]}"


def postcode_district(postcode: str) -> str:
    """The outward code: ``"E15 4HT"`` -> ``"E15"``."""
    return normalise_postcode(postcode).split(" ")[0]


def normalise_name(raw: str) -> str:
    """Without case, accents, punctuation or spaces: ``" O'Brien-Smith"`` -> ``"obriensmith"``."""
    decomposed = unicodedata.normalize("NFKD", raw)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]", "", letters.casefold())


def resident_keys(
    secret: str,
    *,
    given_name: str,
    family_name: str,
    date_of_birth: date | None = None,
    postcode: str | None = None,
    uprn: str | None = None,
) -> list[str]:
    """Every key these identifiers give, strongest first: name and date of birth; name and
    postcode; family name and UPRN. Keyed hashes, so a key reveals nothing by itself."""
    given, family = normalise_name(given_name), normalise_name(family_name)
    parts: list[str] = []
    if date_of_birth is not None:
        parts.append(f"dob|{given}|{family}|{date_of_birth.isoformat()}")
    if postcode:
        parts.append(f"postcode|{given}|{family}|{normalise_postcode(postcode)}")
    if uprn:
        parts.append(f"uprn|{family}|{uprn}")
    return [hmac.new(secret.encode(), part.encode(), hashlib.sha256).hexdigest() for part in parts]


def age_in_years(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _sealing_key(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"upstream resident identity sealing v1",
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_identity(secret: str, identity: dict[str, Any]) -> str:
    """Identity fields encrypted for the services that hold the resident key secret, so that
    the risk service's outbox and the broker never hold them readable."""
    return _sealing_key(secret).encrypt(json.dumps(identity, default=str).encode()).decode()


def unseal_identity(secret: str, sealed: str) -> dict[str, Any]:
    try:
        return json.loads(_sealing_key(secret).decrypt(sealed.encode()))
    except InvalidToken as exc:
        raise ValueError("sealed identity cannot be opened with this deployment's secret") from exc
