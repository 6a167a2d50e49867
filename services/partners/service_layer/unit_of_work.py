"""The partners unit of work: the shared one, with the partners settings and a way to open
a webhook sender."""

from __future__ import annotations

from dataclasses import dataclass

from services.partners.adapters.webhook_sender import OpenWebhookSender, http_webhook_sender
from services.partners.settings import PartnersSettings
from shared.unit_of_work import UnitOfWork


@dataclass
class PartnersUnitOfWork(UnitOfWork[PartnersSettings]):
    open_webhook_sender: OpenWebhookSender = http_webhook_sender
