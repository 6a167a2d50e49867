"""Resident identity: normalising what people type, and the pseudonymous resident key.

The referrals and risk services derive the same keys from the same identifiers and council
with a secret per deployment (``UPSTREAM_RESIDENT_KEY_SECRET``), so the risk service can
hold signals about a council's resident without holding who they are.
"""

# ruff: noqa: RUF001, RUF002, RUF003 -- names in other scripts are the point here

from __future__ import annotations

import base64
import functools
import hashlib
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


@functools.lru_cache(maxsize=1 << 16)  # a borough has a few thousand; keys need it per row
def normalise_postcode(raw: str) -> str:
    """``" e15 4ht "`` -> ``"E15 4HT"``; ValueError when it is not a UK postcode."""
    compact = re.sub(r"\s+", "", raw).upper()
    if not _POSTCODE.match(compact):
        # Never the value itself: the message reaches a refusal's body and an import's report.
        raise ValueError("not a UK postcode (for example E15 4HT)")
    return f"{compact[:-3]} {compact[-3:]}"


def postcode_district(postcode: str) -> str:
    """The outward code: ``"E15 4HT"`` -> ``"E15"``."""
    return normalise_postcode(postcode).split(" ")[0]


# -- names ---------------------------------------------------------------------------------
#
# A name's key keeps the letters of every script and folds only what people write either way:
#
# - compatibility forms and case: NFKD and full case folding (``ｶ`` = ``カ``, ``ﬁ`` = ``fi``,
#   ``ß`` = ``ss``, ``ς`` = ``σ``, ``Ａ`` = ``a``);
# - accents on Latin, Greek and Cyrillic letters, the alphabets whose accented letters are
#   routinely typed without them: ``José`` = ``Jose``, ``Zoë`` = ``Zoe``, ``Γιώργος`` =
#   ``Γιωργος``, ``Фёдор`` = ``Федор`` (also ``й`` = ``и``, as ``ñ`` = ``n``); and the Latin
#   letters that carry a stroke rather than an accent, so do not decompose: ``ł`` = ``l``,
#   ``ø`` = ``o``, ``æ`` = ``ae`` (:data:`_LATIN_FOLDS`); the Greek iota subscript is not an
#   accent but the iota it stands for (``ᾳ`` = ``αι``, as case folding has it);
# - the optional vowel and reading marks of Arabic (harakat, shadda, hamza above and below,
#   superscript alef) and Hebrew (niqqud, cantillation): ``مُحَمَّد`` = ``محمد``, ``أحمد`` = ``احمد``;
# - everything that is not a letter or a digit: spaces, punctuation, symbols, control and
#   format characters (zero-width joiners), the apostrophe-like modifier letters
#   (``ʼ``, ``ʻ``, ``ˈ``: U+02B0–U+02FF) and the Arabic tatweel (a stretch of the line).
#
# Every other combining mark is part of the spelling and is kept: Devanagari, Bengali,
# Tamil… vowel signs and viramas (``राम`` is not ``रम``), Thai vowels and tone marks, the
# Japanese voicing marks (``ガ`` is not ``カ``). Decimal digits of any script are kept as
# ASCII digits (names rarely hold them; ASCII ones always counted). The key is NFC.
#
# For ASCII names and Latin names whose letters decompose (``é``, ``ñ``, ``å``…) the key
# is exactly what it was before letters of other scripts were kept, so their resident keys
# did not change.

_LATIN_FOLDS = str.maketrans(
    {
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "ħ": "h",
        "ŧ": "t",
        "ı": "i",
        "þ": "th",
    }
)
_ACCENT_FOLDED_SCRIPTS = ("LATIN ", "GREEK ", "CYRILLIC ")
_OPTIONAL_MARKS = (
    (0x0591, 0x05C7),  # Hebrew points and cantillation
    (0x0610, 0x061A),  # Arabic honorific marks
    (0x064B, 0x065F),  # Arabic harakat, shadda, sukun, hamza above and below
    (0x0670, 0x0670),  # Arabic superscript alef
    (0x06D6, 0x06ED),  # Arabic Quranic annotation marks
)
_IGNORED_LETTERS = ((0x02B0, 0x02FF), (0x0640, 0x0640))  # modifier apostrophes; tatweel


def _within(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in ranges)


def _folded(raw: str) -> str:
    """Compatibility caseless form (Unicode 3.13 D146), then the Latin stroke folds."""
    once = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", raw).casefold())
    twice = unicodedata.normalize("NFKD", once.casefold())
    return twice.translate(_LATIN_FOLDS)


def is_name_letter(char: str) -> bool:
    """A letter of any script that counts in a name (not ``ʼ`` or a tatweel)."""
    category = unicodedata.category(char)
    return (category[0] == "L" or category == "Nl") and not _within(char, _IGNORED_LETTERS)


def normalise_name(raw: str) -> str:
    """The name as matching compares it: ``" O'Brien-Smith"`` -> ``"obriensmith"``,
    ``"José"`` -> ``"jose"``, ``"Иван"`` -> ``"иван"``, ``"王伟"`` -> ``"王伟"``. Empty only
    when the name has no letter (see the notes above for what is folded and what is kept)."""
    return _normalised_name(raw)


@functools.lru_cache(maxsize=1 << 16)  # names repeat: a feed's million rows hold few
def _normalised_name(raw: str) -> str:
    kept: list[str] = []
    base: str | None = None  # the script rule for marks on the last character kept
    for char in _folded(raw):
        category = unicodedata.category(char)
        if category[0] == "M":
            if base == "letter" and category != "Me" and not _within(char, _OPTIONAL_MARKS):
                kept.append(char)
            continue
        base = None
        if is_name_letter(char):
            kept.append(char)
            folds_accents = unicodedata.name(char, "").startswith(_ACCENT_FOLDED_SCRIPTS)
            base = "accented" if folds_accents else "letter"
        elif category == "Nd":
            kept.append(str(unicodedata.digit(char)))
    return unicodedata.normalize("NFC", "".join(kept))


def has_letters(raw: str) -> bool:
    """Whether a name has a letter to match on (digits, punctuation or marks alone do not)."""
    return any(is_name_letter(char) for char in normalise_name(raw))


def name_with_letters(raw: str) -> str:
    """``raw``, if it has a letter; else ValueError (for use as a pydantic validator)."""
    if not has_letters(raw):
        raise ValueError("must contain a letter")
    return raw


def resident_keys(
    secret: str,
    *,
    council: str,
    given_name: str,
    family_name: str,
    date_of_birth: date | None = None,
    postcode: str | None = None,
    uprn: str | None = None,
) -> list[str]:
    """Every key these identifiers give a resident of ``council`` (its GSS code), strongest
    first: name and date of birth; name and postcode; family name and UPRN. Keyed hashes, so
    a key reveals nothing by itself.

    Each council is the controller of what it holds about its residents, so the council is
    part of every key: the same person known to two councils is two residents to the risk
    service (two profiles, each council's signals deciding only its own flags, its erasure
    and subject access reaching only its own), never one linked across them."""
    return [
        council_key(secret, council, key)
        for key in identifiers_keys(
            secret,
            given_name=given_name,
            family_name=family_name,
            date_of_birth=date_of_birth,
            postcode=postcode,
            uprn=uprn,
        )
    ]


def identifiers_keys(
    secret: str,
    *,
    given_name: str,
    family_name: str,
    date_of_birth: date | None = None,
    postcode: str | None = None,
    uprn: str | None = None,
) -> list[str]:
    """The keys of the identifiers alone, whatever the council: what resident keys were
    before they named it (``resident_keys`` keys each again with the council). Only what
    was stored then needs them (an erasure recorded before, risk migration 0011)."""
    given, family = normalise_name(given_name), normalise_name(family_name)
    if not (given and family):
        # Keys of letterless names would make every such person one resident.
        raise ValueError("a resident's given and family name must each contain a letter")
    parts: list[str] = []
    if date_of_birth is not None:
        parts.append(f"dob|{given}|{family}|{date_of_birth.isoformat()}")
    if postcode:
        parts.append(f"postcode|{given}|{family}|{normalise_postcode(postcode)}")
    if uprn:
        parts.append(f"uprn|{family}|{uprn}")
    return [_keyed(secret, part) for part in parts]


def council_key(secret: str, council: str, identifiers_key: str) -> str:
    """The key of a council's resident, from the key of their identifiers alone (what keys
    were before they named the council). A key of its own, not the part string with the
    council in it, so that keys stored before can be given their council's key (the risk
    service's migration 0011) without the identifiers, which it never held."""
    return _keyed(secret, f"{council}|{identifiers_key}")


def _keyed(secret: str, message: str) -> str:
    inner, outer = _hmac_pads(secret)
    digest = inner.copy()
    digest.update(message.encode())
    keyed = outer.copy()
    keyed.update(digest.digest())
    return keyed.hexdigest()


@functools.lru_cache(maxsize=8)
def _hmac_pads(secret: str) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) with this secret, its two padded keys hashed once: each key
    is then two copies and two updates, as ``hmac.new(secret, part, sha256).hexdigest()``
    gives it, at a third of the cost (a million-row feed derives two million keys)."""
    key = secret.encode()
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    return (
        hashlib.sha256(key.translate(_INNER_PAD)),
        hashlib.sha256(key.translate(_OUTER_PAD)),
    )


_SHA256_BLOCK = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


def age_in_years(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@functools.lru_cache(maxsize=8)  # one secret a deployment: derived once, not per flag
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
