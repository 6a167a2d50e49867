"""The mail settings of the partners service: GOV.UK Notify is a setting away, complete or
refused at start-up, and over https outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.partners.settings import PartnersSettings

DB = "postgresql+asyncpg://upstream:pw@db/partners"
KEY = "upstream-26785a09-ab16-4eb0-8407-a9ba0f6a3b3c-3d0c5d4a-7a5e-4c47-9bd4-0e4b1c8b6f10"
NOTIFY = {"mail_backend": "notify", "notify_api_key": KEY, "notify_template_id": "t-1"}
PRODUCTION = {
    "environment": "production",
    "jwt_signing_key": "a-real-secret-from-the-vault",
    "tombstone_secret": "a-real-tombstone-secret",
    "public_base_url": "https://partners.example.gov.uk",
}


def test_notify_defaults_to_the_public_api() -> None:
    settings = PartnersSettings(database_url=DB, **NOTIFY)
    assert settings.notify_base_url == "https://api.notifications.service.gov.uk"
    # SMTP's clear-text check does not apply when Notify sends.
    assert PartnersSettings(database_url=DB, **PRODUCTION, **NOTIFY).smtp_tls == "none"


@pytest.mark.parametrize("missing", ["notify_api_key", "notify_template_id"])
def test_notify_without_its_key_or_template_is_refused(missing: str) -> None:
    given = {k: v for k, v in NOTIFY.items() if k != missing}
    with pytest.raises(ValidationError, match="UPSTREAM_MAIL_BACKEND=notify needs"):
        PartnersSettings(database_url=DB, **given)
    with pytest.raises(ValidationError, match="UPSTREAM_MAIL_BACKEND=notify needs"):
        PartnersSettings(database_url=DB, **{**NOTIFY, missing: ""})


def test_notify_over_http_only_in_development() -> None:
    local = {**NOTIFY, "notify_base_url": "http://127.0.0.1:6011"}
    assert PartnersSettings(database_url=DB, **local).notify_base_url.startswith("http://")
    with pytest.raises(ValidationError, match="UPSTREAM_NOTIFY_BASE_URL must be an https"):
        PartnersSettings(database_url=DB, **PRODUCTION, **local)
