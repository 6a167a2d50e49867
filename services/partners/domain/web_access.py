"""Rules of the web inbox's sign-in, pure: addresses, tokens and where a link may lead."""

from __future__ import annotations

import hashlib
import re
import secrets

_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def normalised_email(text: str) -> str | None:
    """The address trimmed and in lower case, or None if it is not a plausible address."""
    address = text.strip().lower()
    return address if _ADDRESS.match(address) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a link or session token: the token itself never is."""
    return hashlib.sha256(token.encode()).hexdigest()


def address_key(address: str) -> str:
    """What the rate limit counts requests by: not the address itself."""
    return hashlib.sha256(b"sign-in:" + address.encode()).hexdigest()


def safe_next(path: str | None) -> str | None:
    """Where to go after signing in: only a page of the inbox (no other site, no scheme)."""
    if not path or not path.startswith("/inbox/") or "//" in path or "\\" in path:
        return None
    return path if re.fullmatch(r"/inbox/[A-Za-z0-9/_-]{0,200}", path) else None
