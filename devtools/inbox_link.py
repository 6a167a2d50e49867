"""One step into the partner web inbox on the embedded stack (``upstream inbox-link``): the
demo food bank is put in the directory if it is not there (a service for Newham and
Hackney, its inbox address registered), a sign-in link is asked for exactly as a volunteer
would ask, and the link is read back from the dev SMTP server's folder and printed.

It goes through the same public pages and operator API as anyone: no back door."""

from __future__ import annotations

import email
import re
import time
from email import policy
from pathlib import Path

import httpx

from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings

DEMO_PARTNER = "Stratford Community Food Bank (demo)"
DEMO_COUNCILS = ("E09000025", "E09000012")  # Newham and Hackney
DEMO_ADDRESS = "volunteers@foodbank.example"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LINK = re.compile(r"https?://\S+/inbox/sign-in/[A-Za-z0-9_\-]+")


def _operator(auth: AuthSettings) -> dict[str, str]:
    token = mint_token(
        auth,
        subject="dev-operator",
        organisation="operator",
        kind=OrganisationKind.OPERATOR,
        roles=[Role.OPERATOR],
    )
    return {"Authorization": f"Bearer {token}"}


def demo_partner(http: httpx.Client, partners: str, auth: AuthSettings) -> str:
    """The demo food bank's organisation id, creating it and its service the first time."""
    operator = _operator(auth)
    exported = http.get(f"{partners}/v1/directory/export", headers=operator)
    exported.raise_for_status()
    for service in exported.json():
        organization = service.get("organization") or {}
        if organization.get("name") == DEMO_PARTNER:
            return str(organization["id"])
    created = http.post(
        f"{partners}/v1/organizations",
        headers=operator,
        json={
            "name": DEMO_PARTNER,
            "description": "A food bank run by volunteers (the dev stack's demo partner)",
            "kind": "food",
            "agreements": [
                {
                    "council": council,
                    "reference": f"{council} demo food bank DSA",
                    "needs": ["food"],
                    "lawful_bases": ["consent", "vital_interests", "public_task"],
                    "starts_on": "2026-01-01",
                }
                for council in DEMO_COUNCILS
            ],
        },
    )
    created.raise_for_status()
    organization_id = str(created.json()["id"])
    http.post(
        f"{partners}/v1/services",
        headers=operator,
        json={
            "organization_id": organization_id,
            "name": "Emergency food parcels",
            "description": "Food parcels within a day, delivered or collected",
            "needs": ["food"],
            "councils": list(DEMO_COUNCILS),
            "languages": ["en"],
            "capacity": 50,
        },
    ).raise_for_status()
    return organization_id


def sign_in_link(
    partners: str, mail_folder: Path, auth: AuthSettings, *, timeout: float = 20.0
) -> str:
    with httpx.Client(timeout=10) as http:
        organization_id = demo_partner(http, partners, auth)
        http.put(
            f"{partners}/v1/organizations/{organization_id}/inbox-addresses",
            headers=_operator(auth),
            json={"addresses": [DEMO_ADDRESS]},
        ).raise_for_status()
        page = http.get(f"{partners}/inbox/sign-in")
        page.raise_for_status()
        match = _CSRF.search(page.text)
        if match is None:
            raise RuntimeError("the sign-in page carries no form token")
        # The form cookie is Secure; over the dev stack's plain http it is sent by hand.
        cookies = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
        asked_at = time.time()
        http.post(
            f"{partners}/inbox/sign-in",
            data={"email": DEMO_ADDRESS, "csrf": match.group(1), "next": ""},
            headers={"Cookie": cookies},
        ).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sorted(mail_folder.glob("*.eml"), key=lambda p: p.stat().st_mtime):
            if message.stat().st_mtime < asked_at - 1:
                continue
            parsed = email.message_from_bytes(message.read_bytes(), policy=policy.default)
            if DEMO_ADDRESS not in str(parsed["To"]):
                continue
            body = parsed.get_body(preferencelist=("plain", "html"))
            if body is not None and (link := _LINK.search(body.get_content())):
                return link.group(0)
        time.sleep(0.2)
    raise RuntimeError(f"no sign-in email reached {mail_folder} within {timeout:.0f} s")
