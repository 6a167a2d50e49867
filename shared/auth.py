"""Bearer-token authentication and authorisation.

A token's claims name the organisation (a council by GSS code, a voluntary partner by id,
or the operator), its kind and the person's roles. Development signs tokens with a local
key (HS256); production verifies them against the organisation's OIDC JWKS.

Missing, malformed, badly signed or expired token: 401. Wrong kind or role: 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from shared.input_policy import validation_reason
from shared.settings import AuthSettings
from shared.vocabulary import GSS_CODE

_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OrganisationKind(StrEnum):
    COUNCIL = "council"
    VCS = "vcs"  # a voluntary and community sector partner
    OPERATOR = "operator"


class Role(StrEnum):
    CASEWORKER = "caseworker"  # council staff working cases
    REFERRER = "referrer"  # may refer a resident
    PARTNER = "partner"  # a partner's staff answering offers
    DATA_FEED = "data_feed"  # a council data team sending signals
    OPERATOR = "operator"  # configures the deployment
    INFORMATION_GOVERNANCE = "information_governance"  # a council's DPO team: reads the audit
    MANAGER = "manager"  # a council's service managers: the outcome figures and reports


class Principal(BaseModel):
    """Who is calling, as the verified token says."""

    model_config = ConfigDict(frozen=True)

    subject: str = Field(min_length=1, max_length=256)
    organisation: str = Field(min_length=1, max_length=128)
    kind: OrganisationKind
    roles: frozenset[Role]
    name: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _council_by_gss_code(self) -> Principal:
        if self.kind is OrganisationKind.COUNCIL and not GSS_CODE.match(self.organisation):
            raise ValueError("a council is named by its GSS code, e.g. E09000025")
        return self


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (safe to show the caller)."""


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            if settings.jwt_jwks_url
            else None
        )
        self._key = settings.jwt_signing_key.get_secret_value()

    @property
    def may_block(self) -> bool:
        """Whether ``verify`` may fetch a JWKS over the network (else it only computes)."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """Blocking when a JWKS must be fetched: call from a worker thread."""
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = _ASYMMETRIC
            else:
                key, algorithms = self._key, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature is not valid") from exc
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"token signing key not found: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"token is not valid: {exc}") from exc
        try:
            return Principal.model_validate(
                {
                    "subject": claims["sub"],
                    "organisation": claims.get("org", ""),
                    "kind": claims.get("org_kind"),
                    "roles": frozenset(claims.get("roles") or ()),
                    "name": claims.get("name"),
                }
            )
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'claims'}: {validation_reason(e)}"
                for e in exc.errors()
            )
            raise InvalidToken(f"token claims are not valid: {reasons}") from exc


def mint_token(
    settings: AuthSettings,
    *,
    subject: str,
    organisation: str,
    kind: OrganisationKind,
    roles: Iterable[Role],
    name: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """A token signed with the local key: development and tests only."""
    principal = Principal(
        subject=subject, organisation=organisation, kind=kind, roles=frozenset(roles), name=name
    )
    issued = now or datetime.now(UTC)
    claims = {
        "sub": principal.subject,
        "org": principal.organisation,
        "org_kind": principal.kind.value,
        "roles": sorted(role.value for role in principal.roles),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued,
        "exp": issued + ttl,
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, settings.jwt_signing_key.get_secret_value(), algorithm="HS256")


def _unauthorised(reason: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=reason,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


# Declares the bearer scheme in the OpenAPI document (Swagger's Authorize button); the
# checks and their 401 answers are ours, below.
BEARER = HTTPBearer(auto_error=False, description="A JWT from the organisation's identity provider")


async def authenticate(
    request: Request, declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    """FastAPI dependency. A JWKS fetch runs in the thread pool; a token checked against the
    local key is verified on the event loop (a thread hop for it cost more than the check)."""
    del declared  # the header is read whole here, to answer each malformed form precisely
    header = request.headers.get("authorization")
    if not header:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorised("authorization header must be 'Bearer <token>'")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        if verifier.may_block:
            return await run_in_threadpool(verifier.verify, token.strip())
        return verifier.verify(token.strip())
    except InvalidToken as exc:
        raise _unauthorised(str(exc)) from exc


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require(
    *, kinds: Iterable[OrganisationKind] = (), roles: Iterable[Role] = ()
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits a principal of one of ``kinds`` holding one of ``roles``
    (async: it only compares, and FastAPI would run a plain function in its thread pool)."""
    allowed_kinds, allowed_roles = frozenset(kinds), frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if allowed_kinds and principal.kind not in allowed_kinds:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{principal.kind.value} organisations may not do this; allowed: "
                + ", ".join(sorted(k.value for k in allowed_kinds)),
            )
        if allowed_roles and not (principal.roles & allowed_roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "this needs one of the roles: " + ", ".join(sorted(r.value for r in allowed_roles)),
            )
        return principal

    return check


# The one principal every service has the same rule for: an operator organisation's operator.
Operator = Annotated[
    Principal, Depends(require(kinds=[OrganisationKind.OPERATOR], roles=[Role.OPERATOR]))
]
# A council's information-governance team (its DPO's), or an operator: who reads the audit,
# asks for subject access and erasure, and manages agreements.
InformationGovernance = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.INFORMATION_GOVERNANCE, Role.OPERATOR],
        )
    ),
]
