"""Email notifications to a partner's registered addresses: a new offer, a reminder before
its deadline, an offer handed on because it expired. Queued with the change they report,
sent by the worker through SMTP (or GOV.UK Notify), retried with backoff and logged, like
webhooks (a refusal by Notify, a 4xx or 5xx, is a failed attempt like an SMTP error).

An email holds NO personal data: only the need, the urgency, the deadline and links to the
inbox, where the partner signs in to see the rest. The "accept" and "decline" links open a
page that asks for confirmation (a POST), so a mail filter following links acts on nothing.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.partners.adapters import email_deliveries as store
from services.partners.adapters import web_access as addresses
from services.partners.adapters.mail import Mail, MailNotSent
from services.partners.domain.notifications import EmailKind
from services.partners.domain.webhooks import DeliveryStatus, after_attempt
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.clock import LONDON
from shared.redaction import safe_reason
from shared.vocabulary import Need

log = logging.getLogger(__name__)


# The kinds of email (domain/notifications.py), by their short names.
OFFER_MADE, OFFER_REMINDER = EmailKind.OFFER_MADE, EmailKind.OFFER_REMINDER
OFFER_EXPIRED, OFFER_OVERDUE = EmailKind.OFFER_EXPIRED, EmailKind.OFFER_OVERDUE
SIGN_IN = EmailKind.SIGN_IN  # a sign-in link (service_layer/web_access.py): erased once final


@dataclass(frozen=True)
class OfferNotice:
    """Everything an offer email may say: nothing about the resident."""

    kind: EmailKind
    offer_id: str
    need: Need
    urgency: str
    respond_by: datetime


def _words(need: Need) -> str:
    return need.value.replace("_", " ")


def when(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%-d %B %Y at %H:%M (UK time)")


def compose(notice: OfferNotice, base_url: str) -> tuple[str, str]:
    """The subject and plain-text body of an offer email."""
    need, link = _words(notice.need), f"{base_url}/inbox/offers/{notice.offer_id}"
    facts = f"Need: {need}\nUrgency: {notice.urgency}\nAnswer by: {when(notice.respond_by)}\n"
    if notice.kind == OFFER_EXPIRED:
        return (
            f"Referral offer handed on: {need}",
            "A referral offered to your organisation was not answered by its deadline, "
            "so it has been offered to another organisation.\n\n"
            f"{facts}\nYou do not need to do anything.\n",
        )
    if notice.kind == OFFER_OVERDUE:
        return (
            f"Referral overdue for an update: {need}",
            "A referral your organisation accepted has had no progress or outcome recorded "
            f"since its follow-up deadline ({when(notice.respond_by)}).\n\n"
            f"Need: {need}\n\nRecord progress or the outcome (you will be asked to sign in):\n"
            f"{link}\n",
        )
    if notice.kind == OFFER_REMINDER:
        subject = f"Reminder: referral offer waiting, {need} (answer by {when(notice.respond_by)})"
        opening = "A referral offered to your organisation is still waiting for an answer."
    else:
        subject = f"New referral offer: {need}, urgency {notice.urgency}"
        opening = "Your organisation has been offered a referral."
    body = (
        f"{opening}\n\n{facts}\n"
        f"See the referral (you will be asked to sign in):\n{link}\n\n"
        f"Accept it: {link}/accept\n"
        f"Decline it: {link}/decline\n\n"
        "These links open a page that asks you to confirm. Nothing happens until you do.\n"
        "If you do not answer in time, the referral is offered to another organisation.\n"
    )
    return subject, body


async def queue_offer_email(
    uow: PartnersUnitOfWork, organization_id: str, notice: OfferNotice, *, now: datetime
) -> int:
    """Inside the caller's transaction: one email per registered address of the partner
    (none if it has none). How many were queued."""
    to = await addresses.addresses_of(uow.session, organization_id)
    subject, body = compose(notice, uow.settings.public_base_url)
    for address in to:
        await store.add(
            uow.session,
            id=uow.new_id(),
            organization_id=organization_id,
            offer_id=notice.offer_id,
            kind=notice.kind,
            to_address=address,
            subject=subject,
            body=body,
            next_attempt_at=now,
        )
    return len(to)


async def queue_reminders(uow: PartnersUnitOfWork, *, limit: int = 100) -> int:
    """Offers unanswered as their deadline nears: a reminder each (once)."""
    async with uow.transaction():
        now = uow.now()
        until = now + timedelta(hours=uow.settings.reminder_hours_before)
        due = await store.offers_to_remind(uow.session, now, until, limit)
        for row in due:
            notice = OfferNotice(
                OFFER_REMINDER,
                row["id"],
                Need(row["need"]),
                row["urgency"] or "",
                row["respond_by"],
            )
            await queue_offer_email(uow, row["organization_id"], notice, now=now)
    return len(due)


@dataclass(frozen=True)
class EmailDelivery:
    id: str
    kind: str
    offer_id: str | None
    to_address: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


async def email_log(uow: PartnersUnitOfWork, organization_id: str) -> list[EmailDelivery]:
    rows = await store.log_of(uow.session, organization_id)
    return [
        EmailDelivery(
            id=row["id"],
            kind=row["kind"],
            offer_id=row["offer_id"],
            to_address=row["to_address"],
            status=DeliveryStatus(row["status"]),
            attempts=row["attempts"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            delivered_at=row["delivered_at"],
        )
        for row in rows
    ]


async def deliver_due_emails(uow: PartnersUnitOfWork, *, limit: int = 50) -> int:
    """Send the emails whose time has come; a failure is retried with backoff, then marked
    failed with a safe reason (never the message). How many were attempted."""
    settings = uow.settings
    async with uow.transaction():
        now = uow.now()
        due = await store.due(uow.session, now, limit)
        if not due:
            return 0
        async with uow.open_mailer(settings) as mailer:
            for row in due:
                error: str | None = None
                try:
                    await mailer.send(Mail(row["to_address"], row["subject"], row["body"]))
                except MailNotSent as exc:  # GOV.UK Notify's answer: a status, error names
                    error = exc.reason
                except (OSError, smtplib.SMTPException, RuntimeError) as exc:
                    error = safe_reason(exc)
                if error is not None:
                    log.warning(
                        "email not sent",
                        extra={"delivery_id": row["id"], "kind": row["kind"], "error": error},
                    )
                result = after_attempt(
                    row["attempts"],
                    200 if error is None else None,  # sent, as a 2xx answer would be
                    error,
                    max_attempts=settings.mail_max_attempts,
                    now=now,
                )
                await store.record_attempt(
                    uow.session, row["id"], result, now, erase_body=row["kind"] == SIGN_IN.value
                )
    return len(due)
