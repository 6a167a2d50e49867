"""Signing in to the web inbox by email: an operator registers a partner's addresses; an
address asks for a link; the link (single use, minutes of life, bound to that address and
organisation) starts a session of limited life; the partner signs out.

Asking for a link always gets the same answer, known address or not, and each address may
ask only a few times in a window. The link goes out by email through the same deliveries as
offer emails; its body is erased once sent or given up, and only hashes of tokens are
stored for links and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.partners.adapters import directory as directory_store
from services.partners.adapters import email_deliveries as mail_store
from services.partners.adapters import web_access as store
from services.partners.domain.web_access import (
    address_key,
    new_token,
    normalised_email,
    safe_next,
    token_hash,
)
from services.partners.service_layer.audit import audited
from services.partners.service_layer.notifications import SIGN_IN
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.audit import Category
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound

DIRECTORY_ADMINISTRATION = "directory administration"


@dataclass(frozen=True)
class WebSession:
    """Who is signed in: an address of a partner organisation."""

    organization_id: str
    email: str
    csrf_token: str


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the session cookie; only its hash is stored
    next_path: str | None


async def inbox_addresses(
    uow: PartnersUnitOfWork, organization_id: str, *, reader: Principal
) -> list[str]:
    """The addresses (partner staff's: personal data, so the read is audited)."""
    async with uow.snapshot():
        if not await directory_store.organization_exists(uow.session, organization_id):
            raise NotFound("organisation not found")
        addresses = await store.addresses_of(uow.session, organization_id)
        await audited(
            uow, reader, "inbox_addresses", [Category.CONTACT], [], purpose=DIRECTORY_ADMINISTRATION
        )
    return addresses


async def register_addresses(
    uow: PartnersUnitOfWork,
    organization_id: str,
    emails: list[str],
    *,
    reader: Principal | None = None,
) -> list[str]:
    """The operator sets the addresses that may sign in for a partner (replacing the old
    ones); an address belongs to one organisation only. The answer shows the addresses: its
    ``reader`` (the API's caller) is audited."""
    addresses: list[str] = []
    for number, text in enumerate(emails):
        address = normalised_email(text)
        if address is None:
            raise Invalid(f"addresses.{number}", "is not an email address")
        if address not in addresses:
            addresses.append(address)
    async with uow.transaction():
        # Locked: two replacements at once take turns (each replaces all), never a 409.
        if not await directory_store.lock_organization(uow.session, organization_id):
            raise NotFound("organisation not found")
        if taken := await store.taken_elsewhere(uow.session, organization_id, addresses):
            raise Conflict(f"{len(taken)} address(es) already registered to another partner")
        await store.replace_addresses(uow.session, organization_id, addresses, uow.now())
        if reader is not None:
            await audited(
                uow,
                reader,
                "register_addresses",
                [Category.CONTACT],
                [],
                purpose=DIRECTORY_ADMINISTRATION,
            )
    return addresses


async def request_link(uow: PartnersUnitOfWork, email: str, next_path: str | None) -> None:
    """Sends a sign-in link if the address is registered and has not asked too often; says
    nothing either way."""
    address = normalised_email(email)
    if address is None:
        return
    settings = uow.settings
    async with uow.transaction():
        now, key = uow.now(), address_key(address)
        window = timedelta(minutes=settings.sign_in_window_minutes)
        await store.prune_requests(uow.session, now - window)
        if await store.count_requests(uow.session, key, now - window) >= (
            settings.sign_in_requests_per_window
        ):
            return
        await store.add_request(uow.session, uow.new_id(), key, now)
        organization_id = await store.organization_of_address(uow.session, address)
        if organization_id is None:
            return
        token = new_token()
        minutes = settings.sign_in_link_minutes
        await store.add_link(
            uow.session,
            token_hash=token_hash(token),
            email=address,
            organization_id=organization_id,
            next_path=safe_next(next_path),
            expires_at=now + timedelta(minutes=minutes),
            created_at=now,
        )
        await mail_store.add(
            uow.session,
            id=uow.new_id(),
            organization_id=organization_id,
            offer_id=None,
            kind=SIGN_IN,
            to_address=address,
            subject="Your link to sign in to the Upstream partner inbox",
            body=(
                "Use this link to sign in to your organisation's Upstream partner inbox:\n\n"
                f"{settings.public_base_url}/inbox/sign-in/{token}\n\n"
                f"It works once, for {minutes:g} minutes. If you did not ask for it, "
                "you can ignore this email.\n"
            ),
            next_attempt_at=now,
        )


async def sign_in(uow: PartnersUnitOfWork, token: str) -> SignedIn | None:
    """The link used (once, in date): a new session; None if the link is used, expired or
    unknown."""
    async with uow.transaction():
        now = uow.now()
        link = await store.use_link(uow.session, token_hash(token), now)
        if link is None:
            return None
        session_token = new_token()
        await store.add_session(
            uow.session,
            token_hash=token_hash(session_token),
            organization_id=link["organization_id"],
            email=link["email"],
            csrf_token=new_token(),
            expires_at=now + timedelta(hours=uow.settings.web_session_hours),
            created_at=now,
        )
    return SignedIn(session_token, link["next_path"])


async def current_session(uow: PartnersUnitOfWork, token: str | None) -> WebSession | None:
    if not token:
        return None
    row = await store.live_session(uow.session, token_hash(token), uow.now())
    if row is None:
        return None
    return WebSession(row["organization_id"], row["email"], row["csrf_token"])


async def sign_out(uow: PartnersUnitOfWork, token: str) -> None:
    async with uow.transaction():
        await store.end_session(uow.session, token_hash(token), uow.now())
