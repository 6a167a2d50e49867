"""A service app built from the shared factory with a few routes that exercise its checks.
No database is reached: the engine connects lazily and these routes never use it."""

from __future__ import annotations

import socket
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import MetaData
from sqlalchemy import exc as sa_exc

from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Principal, Role, require
from shared.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from shared.http import create_app
from shared.service import ServiceDefinition

router = APIRouter(prefix="/v1")
Operator = Annotated[Principal, Depends(require(roles=[Role.OPERATOR]))]
Council = Annotated[Principal, Depends(require(kinds=[OrganisationKind.COUNCIL]))]


class Parcel(BaseModel):
    postcode: str = Field(pattern=r"^[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}$")
    households: int = Field(ge=1)
    recipient: str | None = None

    @field_validator("recipient")
    @classmethod
    def _on_the_round(cls, value: str | None) -> str | None:
        # A validator written as they often are: quoting the value it refuses.
        if value is not None and not value.startswith("Known "):
            raise ValueError(f"{value.upper()!r} is not on the round")
        return value


@router.get("/operators-only")
def operators_only(principal: Operator) -> dict[str, str]:
    return {"subject": principal.subject}


@router.get("/councils-only")
def councils_only(principal: Council) -> dict[str, str]:
    return {"council": principal.organisation}


@router.post("/parcels")
def parcels(parcel: Parcel) -> Parcel:
    return parcel


@router.post("/refusals/{kind}")
def refuse(kind: str) -> None:
    """A use case's refusals, raised as the service layer raises them."""
    refusals: dict[str, Refused] = {
        "missing": NotFound("parcel not found"),
        "forbidden": Forbidden("only the food bank may do that"),
        "conflict": Conflict("a delivered parcel cannot be cancelled", "delivered", ["returned"]),
        "invalid": Invalid.of([("households", "too many"), ("postcode", "not served")]),
    }
    raise refusals[kind]


class Note(BaseModel):
    text: str
    tags: list[str] = []
    when: str | None = None


@router.post("/notes")
def notes(note: Note) -> Note:
    return note


@router.get("/pages/{name}")
def pages(name: str, page: int = 1) -> dict[str, object]:
    return {"name": name, "page": page}


@router.post("/rules", openapi_extra={"requestBody": {"content": {"application/yaml": {}}}})
async def rules(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


class _DriverError(Exception):
    """What asyncpg raises under SQLAlchemy's wrapper."""

    def __init__(self, sqlstate: str, constraint_name: str) -> None:
        super().__init__("duplicate key value: Key (name)=(Amina Okafor) already exists")
        self.sqlstate, self.constraint_name = sqlstate, constraint_name


@router.post("/database-refusals/{sqlstate}")
def database_refusal(sqlstate: str) -> None:
    adapter_error = Exception("adapter")
    adapter_error.__cause__ = _DriverError(sqlstate, "uq_parcels_name")
    raise sa_exc.IntegrityError("INSERT INTO parcels", {"name": "Amina Okafor"}, adapter_error)


@router.post("/database-refusals/{sqlstate}/unmapped")
def unmapped_database_refusal(sqlstate: str) -> None:
    """A refusal SQLAlchemy's asyncpg dialect does not map (a bare ``DBAPIError``)."""
    adapter_error = Exception("adapter")
    adapter_error.__cause__ = _DriverError(sqlstate, "")
    raise sa_exc.DBAPIError("INSERT INTO parcels", {"name": "Amina\x00"}, adapter_error)


@router.post("/driver-refusal")
def driver_refusal() -> None:
    """asyncpg refusing a parameter before the server sees it (out of the column's range)."""
    adapter_error = Exception("adapter")
    adapter_error.__cause__ = asyncpg.DataError("invalid input for query argument $1: 10**30")
    raise sa_exc.DBAPIError("INSERT INTO parcels", {"priority": 10**30}, adapter_error)


@router.get("/database-lost")
def database_lost() -> None:
    raise sa_exc.InterfaceError(
        "SELECT 1", {}, ConnectionResetError("connection was closed"), connection_invalidated=True
    )


@router.get("/database-misused")
def database_misused() -> None:
    raise sa_exc.InterfaceError(
        "SELECT 1", {}, Exception("another operation is in progress"), connection_invalidated=False
    )


@router.get("/boom")
def boom() -> None:
    raise RuntimeError("a bug")


def _port_nobody_listens_on() -> tuple[socket.socket, int]:
    """A port bound but never listened on: connections to it are refused for as long as the
    socket lives, whatever else runs on this machine (a `make run` stack on the defaults)."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    return held, held.getsockname()[1]


_HELD, CLOSED_PORT = _port_nobody_listens_on()


def settings(**overrides: object) -> ReferralsSettings:
    values: dict[str, object] = {
        "database_url": f"postgresql+asyncpg://nobody@127.0.0.1:{CLOSED_PORT}/none",
        "kafka_bootstrap_servers": f"127.0.0.1:{CLOSED_PORT}",
        **overrides,
    }
    return ReferralsSettings.model_validate(values)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="test",
        description="",
        package="services.referrals",
        settings_class=ReferralsSettings,
        metadata=MetaData(),
        routers=[router],
    )


def client(**overrides: object) -> TestClient:
    return TestClient(create_app(definition(), settings(**overrides)))
