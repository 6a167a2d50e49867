from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.partners.settings import PartnersSettings
from services.referrals.settings import ReferralsSettings
from services.risk.settings import RiskSettings
from shared.messaging.kafka import BrokerProfile

DB = "postgresql+asyncpg://upstream:pw@db/referrals"


def test_each_service_has_its_own_default_port() -> None:
    ports = [
        cls(database_url=DB).port for cls in (ReferralsSettings, RiskSettings, PartnersSettings)
    ]
    assert ports == [8001, 8002, 8003]
    assert ReferralsSettings(database_url=DB, http_port=9000).port == 9000


def test_development_secrets_are_refused_outside_development() -> None:
    both = "UPSTREAM_JWT_SIGNING_KEY, UPSTREAM_TOMBSTONE_SECRET must be set"
    with pytest.raises(ValidationError, match=f"{both} in production"):
        PartnersSettings(database_url=DB, environment="production")
    with pytest.raises(ValidationError, match=f"{both} in staging"):
        PartnersSettings(database_url=DB, environment="staging")
    # The partners tombstone secret is its own: no falling back to the JWT signing key.
    with pytest.raises(ValidationError, match="UPSTREAM_TOMBSTONE_SECRET must be set"):
        PartnersSettings(
            database_url=DB,
            environment="production",
            jwt_signing_key="a-real-secret-from-the-vault",
            **PRODUCTION_PARTNERS,
        )
    with pytest.raises(ValidationError, match="UPSTREAM_RESIDENT_KEY_SECRET must be set"):
        ReferralsSettings(
            database_url=DB,
            environment="production",
            jwt_signing_key="a-real-secret-from-the-vault",
        )


PRODUCTION_PARTNERS = {
    "public_base_url": "https://partners.example.gov.uk",
    "smtp_tls": "starttls",
}
PRODUCTION_PARTNERS_SECRETS = {"tombstone_secret": "a-real-tombstone-secret"}


def test_production_runs_with_its_own_key_or_a_jwks() -> None:
    own_key = PartnersSettings(
        database_url=DB,
        environment="production",
        jwt_signing_key="a-real-secret-from-the-vault",
        **PRODUCTION_PARTNERS,
        **PRODUCTION_PARTNERS_SECRETS,
    )
    assert own_key.environment == "production"
    jwks = PartnersSettings(
        database_url=DB,
        environment="production",
        jwt_jwks_url="https://idp.example/.well-known/jwks.json",
        **PRODUCTION_PARTNERS,
        **PRODUCTION_PARTNERS_SECRETS,
    )
    assert jwks.jwt_jwks_url


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"public_base_url": "http://partners.example.gov.uk"}, "UPSTREAM_PUBLIC_BASE_URL"),
        ({"smtp_tls": "none"}, "UPSTREAM_SMTP_TLS=none"),
    ],
)
def test_production_refuses_clear_text_links_and_mail(change: dict, refused: str) -> None:
    with pytest.raises(ValidationError, match=refused):
        PartnersSettings(
            database_url=DB,
            environment="production",
            jwt_signing_key="a-real-secret-from-the-vault",
            **{**PRODUCTION_PARTNERS, **PRODUCTION_PARTNERS_SECRETS, **change},
        )


def test_database_url_is_required(monkeypatch) -> None:
    monkeypatch.delenv("UPSTREAM_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="database_url"):
        ReferralsSettings()


def test_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("UPSTREAM_DATABASE_URL", DB)
    monkeypatch.setenv("UPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("UPSTREAM_KAFKA_BROKER_PROFILE", "tansu")
    settings = RiskSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_broker_profile is BrokerProfile.TANSU
    assert settings.source == "/upstream/risk"


def test_the_default_broker_profile_is_safe_for_apache_kafka(monkeypatch) -> None:
    monkeypatch.setenv("UPSTREAM_DATABASE_URL", DB)
    profile = RiskSettings().kafka_broker_profile
    assert profile is BrokerProfile.KAFKA
    assert profile.idempotent_producer and not profile.verify_topics_before_publishing
    assert not BrokerProfile.TANSU.idempotent_producer
    assert BrokerProfile.TANSU.verify_topics_before_publishing


def test_an_unknown_broker_profile_is_refused_by_name(monkeypatch) -> None:
    monkeypatch.setenv("UPSTREAM_DATABASE_URL", DB)
    monkeypatch.setenv("UPSTREAM_KAFKA_BROKER_PROFILE", "redpanda")
    with pytest.raises(ValidationError, match="kafka_broker_profile"):
        RiskSettings()


def test_jwks_must_be_fetched_over_https_outside_development() -> None:
    with pytest.raises(ValidationError, match="https://"):
        PartnersSettings(
            database_url=DB, environment="production", jwt_jwks_url="http://idp.example/jwks.json"
        )


def test_a_settable_clock_is_refused_outside_development(tmp_path) -> None:
    clock = tmp_path / "clock"
    assert RiskSettings(database_url=DB, clock_file=clock).clock_file == clock
    for environment in ("staging", "production"):
        refused = f"UPSTREAM_CLOCK_FILE is refused in {environment}"
        with pytest.raises(ValidationError, match=refused):
            RiskSettings(
                database_url=DB,
                environment=environment,
                jwt_signing_key="a-real-secret-from-the-vault",
                resident_key_secret="another-real-secret",
                clock_file=clock,
            )


def test_the_inbox_is_kept_longer_than_the_outbox_can_replay() -> None:
    """An event the outbox can still replay is not refused as older than the inbox remembers
    (its days less one)."""
    settings = RiskSettings(database_url=DB)
    assert settings.inbox_retention_days > settings.outbox_retention_days
    assert RiskSettings(database_url=DB, outbox_retention_days=7, inbox_retention_days=9)
    for inbox_days in (31, 30, 20):
        with pytest.raises(ValidationError, match=r"UPSTREAM_INBOX_RETENTION_DAYS \(\d+\) must"):
            RiskSettings(database_url=DB, outbox_retention_days=30, inbox_retention_days=inbox_days)
