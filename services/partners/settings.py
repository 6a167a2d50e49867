from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class PartnersSettings(ServiceSettings):
    service_name: ClassVar[str] = "partners"
    default_http_port: ClassVar[int] = 8003
