"""Errors raised over personal data leave no trace of it where it must not go: the
reasons dead letters carry and the lines the services log."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import text

from shared.db import create_engine
from shared.observability import JsonFormatter
from shared.redaction import safe_reason
from tests.conftest import MakeDatabase

IDENTIFIERS = ("Amina", "Okafor", "1984-03-02", "E15 4HT")
WHO = "Amina Okafor 1984-03-02 E15 4HT"


async def database_error_over(service_database: MakeDatabase) -> BaseException:
    """A real PostgreSQL error raised by a statement whose parameters are a resident's."""
    engine = create_engine(await service_database("risk"))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE ages (id int PRIMARY KEY, age int)"))
            await connection.execute(text("INSERT INTO ages VALUES (1, 40)"))
            await connection.execute(
                text("INSERT INTO ages VALUES (1, :who)"), {"who": WHO}
            )  # the wrong type and a duplicate key: PostgreSQL refuses it
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the statement should have failed")


def log_line(exc: BaseException) -> str:
    try:
        raise RuntimeError("the handler failed") from exc
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    return JsonFormatter("test").format(record)


async def test_a_database_error_is_told_by_its_class_and_code_not_its_parameters(
    service_database: MakeDatabase,
) -> None:
    exc = await database_error_over(service_database)
    assert any(part in str(exc) for part in IDENTIFIERS), "the raw error should carry them"
    reason = safe_reason(exc)
    assert "DBAPIError" in reason or "Error" in reason
    assert "sqlstate=" in reason
    assert not [part for part in IDENTIFIERS if part in reason], reason

    line = log_line(exc)
    entry = json.loads(line)
    assert "Traceback" in entry["exception"] and "sqlstate=" in entry["exception"]
    assert not [part for part in IDENTIFIERS if part in line], line


def test_a_validation_error_names_fields_and_kinds_never_the_input() -> None:
    class Signal(BaseModel):
        weeks: int
        council: str

    with pytest.raises(ValidationError) as refused:
        Signal.model_validate({"weeks": WHO})
    assert "Okafor" in str(refused.value)
    reason = safe_reason(refused.value)
    assert reason == "ValidationError: weeks: int_parsing; council: missing"
    assert "Okafor" not in log_line(refused.value)


def test_any_other_error_is_its_class_and_where_it_was_raised() -> None:
    def fail() -> None:
        raise KeyError(WHO)

    with pytest.raises(KeyError) as raised:
        fail()
    reason = safe_reason(raised.value)
    assert reason.startswith("KeyError (at tests/integration/test_redaction.py:")
    assert reason.endswith("in fail)")
    assert "Okafor" not in reason
