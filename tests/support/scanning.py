"""Scanning what the system wrote (an email, a log line) for a resident's words."""

from __future__ import annotations

import re


def mentions(text: str, word: str) -> bool:
    """Whether ``text`` holds ``word`` as a word of its own, in any case: a postcode district
    such as "E15" inside a hex id (…1922e15e9…) is not a mention of it."""
    pattern = rf"(?<![0-9a-z]){re.escape(word.lower())}(?![0-9a-z])"
    return re.search(pattern, text.lower()) is not None
