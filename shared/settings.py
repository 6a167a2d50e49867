"""Settings from the environment (prefix ``UPSTREAM_``): one shared base, one class per service.

Each service process reads only its own settings, so a field such as ``database_url`` means
"this service's database". Secrets carry a development default that is refused anywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.messaging.kafka import BrokerProfile

KEYSTORE_DATABASE = "upstream_keys"  # the keystore's database in development, by default
DEVELOPMENT_JWT_SIGNING_KEY = "upstream-development-only-signing-key-never-use-in-production"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class UpstreamSettings(BaseSettings):
    """The environment, and the rule that development secrets stay in development."""

    model_config = SettingsConfigDict(env_prefix="UPSTREAM_", extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> UpstreamSettings:
        if self.environment is Environment.DEVELOPMENT:
            return self
        refused = [
            f"UPSTREAM_{name.upper()}"
            for name, field in type(self).model_fields.items()
            if isinstance(field.default, SecretStr)
            and getattr(self, name).get_secret_value() == field.default.get_secret_value()
            and not self._secret_not_in_use(name)
        ]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} must be set in {self.environment.value}: "
                "the built-in development value is refused outside development"
            )
        return self

    def _secret_not_in_use(self, name: str) -> bool:
        return False


class AuthSettings(UpstreamSettings):
    """How bearer tokens are signed (development) or verified (production)."""

    jwt_signing_key: SecretStr = SecretStr(DEVELOPMENT_JWT_SIGNING_KEY)
    jwt_jwks_url: str | None = Field(
        default=None, description="When set, tokens are verified against this OIDC JWKS (RS/ES/PS)"
    )
    jwt_issuer: str = "upstream"
    jwt_audience: str = "upstream"

    @model_validator(mode="after")
    def _jwks_over_https(self) -> AuthSettings:
        url = self.jwt_jwks_url
        allowed = (
            ("https://", "http://")
            if self.environment is Environment.DEVELOPMENT
            else ("https://",)
        )
        if url is not None and not url.startswith(allowed):
            raise ValueError(f"UPSTREAM_JWT_JWKS_URL must be an {' or '.join(allowed)} URL here")
        return self

    def _secret_not_in_use(self, name: str) -> bool:
        # With a JWKS the local signing key verifies nothing.
        return name == "jwt_signing_key" and self.jwt_jwks_url is not None


class ServiceSettings(AuthSettings):
    """What every service needs. Subclasses set ``service_name`` and ``default_http_port``."""

    service_name: ClassVar[str] = "service"
    default_http_port: ClassVar[int] = 8000

    log_level: str = "INFO"

    database_url: SecretStr = Field(
        description="This service's own PostgreSQL database, e.g. postgresql+asyncpg://user:pw@host/db",
    )

    keystore_url: SecretStr | None = Field(
        default=None,
        description="The deployment's keystore, one database every service shares "
        "(shared/messaging/sealing.py); unset: the database upstream_keys on the server of "
        "UPSTREAM_DATABASE_URL, with its credentials (set it where each service has a role "
        "of its own, as deploy/docker-compose.yml does)",
    )

    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, description="Defaults to the service's own port")
    worker_metrics_port: int | None = Field(
        default=None, description="Prometheus port of the worker process; unset means no endpoint"
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_broker_profile: BrokerProfile = Field(
        default=BrokerProfile.KAFKA,
        description="kafka (Apache Kafka: idempotent producer) or tansu (the embedded broker)",
    )
    kafka_topic_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)

    # Every service keeps an audit trail and sweeps what it must not keep (its timers).
    audit_retention_days: int = Field(
        default=6 * 365,
        ge=1,
        description="audit rows older than this are deleted (6 years: as long as the case "
        "records whose reads they record)",
    )
    retention_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="records a retention sweep deletes at a time"
    )
    outbox_retention_days: int = Field(default=30, ge=1)
    inbox_retention_days: int = Field(
        default=45,
        ge=2,
        description="a consumer's record of the events it applied is deleted after this, "
        "and its consumers refuse (dead-letter) an event older than this less a day, which "
        "they may have applied: at least outbox_retention_days + 2, so that a replay of the "
        "outbox is never refused",
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The relay wakes when a transaction adds to the outbox (LISTEN/NOTIFY); this poll is
    # only the fallback (a lost notification connection, rows written before it listened).
    outbox_poll_interval_ms: int = Field(default=5000, ge=10)
    # A handler failure that is not the infrastructure's is the event's or a bug's: it fails
    # the same way again, so it is tried briefly (holding its partition's other cases back
    # for about 150 ms, not seconds) and then dead-lettered, to be replayed after the fix.
    consumer_max_attempts: int = Field(default=3, ge=1, le=20)
    consumer_retry_backoff_ms: int = Field(default=50, ge=0, le=10_000)
    # On Tansu, a consumer with nothing for this long rests, fetching once every
    # consumer_rest_ms rather than ten times a second (shared/messaging/consumer.py,
    # Resting): the first event after a quiet spell waits up to that much more. 0: never.
    # On Apache Kafka consumers never rest: it answers a fetch as a record arrives, so their
    # fetches wait long and are few anyway.
    consumer_rest_after_s: float = Field(default=60.0, ge=0)
    consumer_rest_ms: int = Field(default=1000, ge=10, le=5_000)

    clock_file: Path | None = Field(
        default=None,
        description="development only: a file holding an ISO 8601 instant the services' clock "
        "runs on from (shared/clock.py); refused in staging and production",
    )

    @model_validator(mode="after")
    def _inbox_outlives_the_outbox(self) -> ServiceSettings:
        if self.inbox_remembers_for < timedelta(days=self.outbox_retention_days + 1):
            raise ValueError(
                f"UPSTREAM_INBOX_RETENTION_DAYS ({self.inbox_retention_days}) must be at least "
                f"UPSTREAM_OUTBOX_RETENTION_DAYS ({self.outbox_retention_days}) + 2: consumers "
                "refuse an event older than their inbox remembers, less a day, and an event the "
                "outbox still holds must be replayable"
            )
        return self

    @model_validator(mode="after")
    def _clock_only_in_development(self) -> ServiceSettings:
        if self.clock_file is not None and self.environment is not Environment.DEVELOPMENT:
            raise ValueError(
                f"UPSTREAM_CLOCK_FILE is refused in {self.environment.value}: "
                "a settable clock is for development and tests only"
            )
        return self

    @property
    def inbox_remembers_for(self) -> timedelta:
        """How old an event a consumer still applies: the inbox's days less one for clocks'
        drift (shared/messaging/inbox.py); an older one may have been applied already."""
        return timedelta(days=self.inbox_retention_days - 1)

    def keystore_database_url(self) -> str:
        if self.keystore_url is not None:
            return self.keystore_url.get_secret_value()
        url = make_url(self.database_url.get_secret_value()).set(database=KEYSTORE_DATABASE)
        return url.render_as_string(hide_password=False)

    @property
    def port(self) -> int:
        return self.http_port if self.http_port is not None else self.default_http_port

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` of everything this service publishes."""
        return f"/upstream/{self.service_name}"


DEVELOPMENT_RESIDENT_KEY_SECRET = "upstream-development-only-resident-key-secret"
