"""The partner web inbox's pages. Routes only: the session and the form in, a use case
called (the same ones the API calls: ``service_layer/offers.py``, ``directory.py``), a page
or a redirect out. Not in the OpenAPI document: these are pages, not an API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from services.partners.api.deps import PartnersWork
from services.partners.service_layer import directory, offers, web_access
from services.partners.service_layer.directory import Editor
from services.partners.service_layer.offers import Decline, InboxOffer, RecordOutcome
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.web_access import WebSession
from services.partners.settings import PartnersSettings
from services.partners.web.pages import (
    FORM_COOKIE,
    HERE,
    SESSION_COOKIE,
    form_token,
    page,
    with_form_cookie,
    with_session_cookie,
    without_session_cookie,
)
from shared.errors import Invalid, Refused
from shared.vocabulary import DeclineReason, OfferStatus, Outcome
from shared.web import SECURITY_HEADERS, FormRefused, form_of, same, see_other

router = APIRouter(prefix="/inbox", include_in_schema=False)

GROUPS = (
    ("New offers", (OfferStatus.OFFERED,)),
    ("Accepted", (OfferStatus.ACCEPTED,)),
    ("In progress", (OfferStatus.IN_PROGRESS,)),
    ("Closed in the last {days}", (OfferStatus.OUTCOME_RECORDED,)),
)
GONE_WORDS = {
    OfferStatus.DECLINED: (
        "You declined this offer",
        "It has been offered to another organisation. You can no longer see its details.",
    ),
    OfferStatus.EXPIRED: (
        "This offer has expired",
        "It was not answered by its deadline, so it has been offered to another "
        "organisation. You can no longer see its details.",
    ),
    OfferStatus.WITHDRAWN: (
        "This offer has been withdrawn",
        "The council withdrew it (for example, the resident withdrew consent or the case "
        "closed). You can no longer see its details.",
    ),
}


def _settings(request: Request) -> PartnersSettings:
    settings: PartnersSettings = request.app.state.settings
    return settings


async def _session(request: Request, uow: PartnersWork) -> WebSession | None:
    return await web_access.current_session(uow, request.cookies.get(SESSION_COOKIE))


MaybeSignedIn = Annotated[WebSession | None, Depends(_session)]


def _to_sign_in(request: Request) -> Response:
    return see_other(f"/inbox/sign-in?next={request.url.path}")


def _refused(exc: Refused, signed_in: WebSession | None) -> HTMLResponse:
    titles = {404: "Page not found", 409: "That cannot be done now", 403: "Not allowed"}
    return page(
        "message.html",
        exc.status_code,
        title=titles.get(exc.status_code, "That could not be done"),
        message=exc.detail,
        signed_in=signed_in,
    )


async def _checked_form(
    request: Request,
    signed_in: WebSession | None,
    *,
    again: str = "The form had expired or did not come from this inbox. Nothing was changed.",
) -> dict[str, str] | Response:
    """The form, held to the input policy, if its CSRF token is right: a signed-in page's
    the session's own; a page before sign-in the form cookie's (double submit). Otherwise a
    page saying it was refused and, with ``again``, what to do."""
    try:
        form = await form_of(request)
    except FormRefused as exc:
        return page(
            "message.html",
            422,
            title="The form was refused",
            message=exc.reason,
            signed_in=signed_in,
        )
    expected = signed_in.csrf_token if signed_in else request.cookies.get(FORM_COOKIE)
    if not same(form.get("csrf"), expected):
        return page(
            "message.html", 403, title="Please try again", message=again, signed_in=signed_in
        )
    return form


# -- assets ---------------------------------------------------------------------------------


@router.get("/assets/inbox.css")
async def stylesheet() -> FileResponse:
    return FileResponse(
        HERE / "static" / "inbox.css",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- signing in -----------------------------------------------------------------------------


@router.get("")
async def home() -> Response:
    return see_other("/inbox/offers")


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    token = form_token(request)
    response = page("sign_in.html", csrf=token, next=next or "", signed_in=None)
    return with_form_cookie(response, token, _settings(request))


@router.post("/sign-in")
async def ask_for_link(request: Request, uow: PartnersWork) -> Response:
    form = await _checked_form(
        request, None, again="The form had expired. Go back and ask for a link again."
    )
    if isinstance(form, Response):
        return form
    email = form.get("email", "").strip()
    if not email:
        token = form_token(request)
        return page(
            "sign_in.html",
            422,
            csrf=token,
            next=form.get("next", ""),
            error="Enter your email address",
            signed_in=None,
        )
    await web_access.request_link(uow, email, form.get("next"))
    return page("check_email.html", minutes=_settings(request).sign_in_link_minutes, signed_in=None)


@router.get("/sign-in/{token}")
async def confirm_sign_in(request: Request, token: str) -> Response:
    """Opening the link signs nothing in (a mail filter may open it): a button does."""
    csrf = form_token(request)
    response = page("confirm_sign_in.html", token=token, csrf=csrf, signed_in=None)
    return with_form_cookie(response, csrf, _settings(request))


@router.post("/sign-in/{token}")
async def sign_in(request: Request, token: str, uow: PartnersWork) -> Response:
    form = await _checked_form(request, None, again="Open the link from your email again.")
    if isinstance(form, Response):
        return form
    signed = await web_access.sign_in(uow, token)
    if signed is None:
        return page(
            "link_refused.html",
            400,
            signed_in=None,
            minutes=_settings(request).sign_in_link_minutes,
        )
    response = see_other(signed.next_path or "/inbox/offers")
    response.delete_cookie(FORM_COOKIE, path="/inbox")
    return with_session_cookie(response, signed.token, _settings(request))


@router.post("/sign-out")
async def sign_out(request: Request, uow: PartnersWork, signed_in: MaybeSignedIn) -> Response:
    if signed_in is not None:
        form = await _checked_form(request, signed_in)
        if isinstance(form, Response):
            return form
        await web_access.sign_out(uow, request.cookies.get(SESSION_COOKIE, ""))
    response = page("signed_out.html", signed_in=None)
    return without_session_cookie(response, _settings(request))


# -- offers ---------------------------------------------------------------------------------


@router.get("/offers")
async def offers_list(
    request: Request, uow: PartnersWork, signed_in: MaybeSignedIn, done: str | None = None
) -> Response:
    if signed_in is None:
        return _to_sign_in(request)
    mine = await offers.list_offers(uow, signed_in)
    closed_days = uow.settings.partner_inbox_closed_days  # (what list_offers shows of the closed)
    days = "day" if closed_days == 1 else f"{closed_days} days"
    groups = [
        (title.format(days=days), [o for o in mine if o.status in statuses])
        for title, statuses in GROUPS
    ]
    name = await directory.organization_name(uow, signed_in.organization_id)
    return page("offers.html", groups=groups, signed_in=signed_in, organisation=name, done=done)


async def _offer_or_page(
    uow: PartnersUnitOfWork, signed_in: WebSession, offer_id: str
) -> InboxOffer | Response:
    """The partner's offer; a clear page if it has gone (declined, expired, withdrawn); not
    found if it is not theirs (or not an offer id at all)."""
    try:
        uuid.UUID(offer_id)
    except ValueError:
        return page(
            "message.html",
            404,
            title="Page not found",
            message="There is no such offer in your inbox.",
            signed_in=signed_in,
        )
    try:
        return await offers.get_offer(uow, signed_in, offer_id)
    except Refused:
        gone = await offers.gone_status(uow, signed_in.organization_id, offer_id)
        if gone is None:
            return page(
                "message.html",
                404,
                title="Page not found",
                message="There is no such offer in your inbox.",
                signed_in=signed_in,
            )
        title, message = GONE_WORDS[gone]
        return page("message.html", 410, title=title, message=message, signed_in=signed_in)


@router.get("/offers/{offer_id}")
async def offer_page(
    request: Request,
    offer_id: str,
    uow: PartnersWork,
    signed_in: MaybeSignedIn,
    done: str | None = None,
) -> Response:
    if signed_in is None:
        return _to_sign_in(request)
    offer = await _offer_or_page(uow, signed_in, offer_id)
    if isinstance(offer, Response):
        return offer
    return page(
        "offer.html",
        offer=offer,
        signed_in=signed_in,
        outcomes=list(Outcome),
        done=done,
    )


@router.get("/offers/{offer_id}/accept")
async def confirm_accept(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    """From the email's "accept" link: a page that asks; only its button (a POST) acts."""
    if signed_in is None:
        return _to_sign_in(request)
    offer = await _offer_or_page(uow, signed_in, offer_id)
    if isinstance(offer, Response):
        return offer
    return page("confirm_accept.html", offer=offer, signed_in=signed_in)


@router.get("/offers/{offer_id}/decline")
async def confirm_decline(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    if signed_in is None:
        return _to_sign_in(request)
    offer = await _offer_or_page(uow, signed_in, offer_id)
    if isinstance(offer, Response):
        return offer
    return page("decline.html", offer=offer, signed_in=signed_in, reasons=list(DeclineReason))


async def _act(
    request: Request,
    offer_id: str,
    uow: PartnersUnitOfWork,
    signed_in: WebSession | None,
    action: Callable[[dict[str, str]], Awaitable[Any]],
    then: str,
) -> Response:
    """A form posted on an offer: signed in, CSRF checked, the use case called, then the
    next page; a refusal becomes a page that says why."""
    if signed_in is None:
        return _to_sign_in(request)
    form = await _checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    try:
        uuid.UUID(offer_id)
    except ValueError:
        return page(
            "message.html",
            404,
            title="Page not found",
            message="There is no such offer.",
            signed_in=signed_in,
        )
    try:
        await action(form)
    except ValueError:  # a choice that is not one of the form's (DeclineReason("…"))
        return page(
            "message.html",
            422,
            title="The form was refused",
            message="Choose one of the options given.",
            signed_in=signed_in,
        )
    except Refused as exc:
        if exc.status_code == 404:
            gone = await _offer_or_page(uow, signed_in, offer_id)
            if isinstance(gone, Response):
                return gone
        return _refused(exc, signed_in)
    return see_other(then)


@router.post("/offers/{offer_id}/accept")
async def accept(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(_: dict[str, str]) -> None:
        assert signed_in is not None
        await offers.accept_offer(uow, signed_in, offer_id)

    return await _act(
        request, offer_id, uow, signed_in, act, f"/inbox/offers/{offer_id}?done=accepted"
    )


@router.post("/offers/{offer_id}/decline")
async def decline(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(form: dict[str, str]) -> None:
        assert signed_in is not None
        command = Decline(DeclineReason(form.get("reason", "")), form.get("note") or None)
        await offers.decline_offer(uow, signed_in.organization_id, offer_id, command)

    return await _act(request, offer_id, uow, signed_in, act, "/inbox/offers?done=declined")


@router.post("/offers/{offer_id}/progress")
async def progress(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(form: dict[str, str]) -> None:
        assert signed_in is not None
        await offers.record_progress(uow, signed_in, offer_id, form.get("note") or None)

    return await _act(
        request, offer_id, uow, signed_in, act, f"/inbox/offers/{offer_id}?done=progress"
    )


@router.post("/offers/{offer_id}/outcome")
async def outcome(
    request: Request, offer_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(form: dict[str, str]) -> None:
        assert signed_in is not None
        command = RecordOutcome(Outcome(form.get("outcome", "")), form.get("note") or None)
        await offers.record_outcome(uow, signed_in, offer_id, command)

    return await _act(
        request, offer_id, uow, signed_in, act, f"/inbox/offers/{offer_id}?done=outcome"
    )


# -- the organisation's services ------------------------------------------------------------


@router.get("/services")
async def services_page(
    request: Request, uow: PartnersWork, signed_in: MaybeSignedIn, done: str | None = None
) -> Response:
    if signed_in is None:
        return _to_sign_in(request)
    mine = await directory.organization_services(uow, signed_in.organization_id)
    return page("services.html", services=mine, signed_in=signed_in, done=done)


async def _service_act(
    request: Request,
    service_id: str,
    signed_in: WebSession | None,
    action: Callable[[Editor, dict[str, str]], Awaitable[None]],
    done: str,
) -> Response:
    if signed_in is None:
        return _to_sign_in(request)
    form = await _checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    try:
        uuid.UUID(service_id)
    except ValueError:
        return page(
            "message.html",
            404,
            title="Page not found",
            message="There is no such service.",
            signed_in=signed_in,
        )
    try:
        await action(Editor(signed_in.organization_id, is_operator=False), form)
    except Refused as exc:
        return _refused(exc, signed_in)
    return see_other(f"/inbox/services?done={done}")


@router.post("/services/{service_id}/pause")
async def pause(
    request: Request, service_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(editor: Editor, form: dict[str, str]) -> None:
        reason = form.get("reason", "").strip() or "paused from the web inbox"
        await directory.pause_service(uow, editor, service_id, reason)

    return await _service_act(request, service_id, signed_in, act, "paused")


_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")


@router.post("/services/{service_id}/capacity")
async def capacity(
    request: Request, service_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(editor: Editor, form: dict[str, str]) -> None:
        given = form.get("capacity", "").strip()
        # ASCII digits only (``str.isdigit`` takes "²", which ``int`` refuses), and few of them.
        if not _WHOLE_NUMBER.fullmatch(given):
            raise Invalid("capacity", "must be a whole number, such as 12")
        await directory.set_capacity(uow, editor, service_id, int(given))

    return await _service_act(request, service_id, signed_in, act, "capacity")


@router.post("/services/{service_id}/resume")
async def resume(
    request: Request, service_id: str, uow: PartnersWork, signed_in: MaybeSignedIn
) -> Response:
    async def act(editor: Editor, _: dict[str, str]) -> None:
        await directory.resume_service(uow, editor, service_id)

    return await _service_act(request, service_id, signed_in, act, "resumed")


__all__ = ["SECURITY_HEADERS", "router"]
