from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from shared.settings import DEVELOPMENT_RESIDENT_KEY_SECRET, ServiceSettings


class RiskSettings(ServiceSettings):
    service_name: ClassVar[str] = "risk"
    default_http_port: ClassVar[int] = 8002

    resident_key_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_RESIDENT_KEY_SECRET),
        description="Shared with the referrals service only: both derive the same resident keys",
    )
    flag_cooling_off_days: int = Field(
        default=30, ge=0, description="no new flag at the same or a lower level within this"
    )
    returning_window_days: int = Field(
        default=180,
        ge=0,
        description="a resident flagged again within this many days of help arriving (an "
        "outcome that helped) is reported as returning",
    )
    import_batch_size: int = Field(
        default=10_000, ge=1, le=50_000, description="rows a transaction of an import stores"
    )
    import_reader_process_from_bytes: int = Field(
        default=4 << 20,
        ge=0,
        description="a file larger than this is read (parsed, checked, keyed) in a process "
        "of its own while the API's process stores it",
    )
    # Retention (docs/information-governance.md, Retention): swept hourly, in batches.
    retention_expired_signal_days: int = Field(
        default=90,
        ge=0,
        description="a signal is deleted this long after it expired (it no longer counts "
        "towards a risk level from the day it expires)",
    )
