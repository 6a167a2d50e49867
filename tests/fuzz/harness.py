"""Schemathesis over a service's own OpenAPI document, in-process over ASGI, on a real
migrated database: every operation, positive and negative data, as each kind of caller.

Bounded for CI: a handful of examples per operation and mode (``UPSTREAM_FUZZ_EXAMPLES``
raises it for a deeper local run), no shrinking, no deadline, and a derandomised seed, so
the same run finds the same things on every machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.python.asgi import ASGIClient, get_client
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from shared.auth import OrganisationKind, Role, mint_token
from shared.http import create_app
from shared.migrations import upgrade
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings

EXAMPLES = int(os.environ.get("UPSTREAM_FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# /readyz asks the broker too (the API needs only PostgreSQL otherwise); it is probed by the
# integration tests against a real broker.
EXCLUDED = {"GET /readyz"}
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a finding is reported as found
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


def run_sync(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """A coroutine on a loop of its own, in a thread of its own: the fuzz tests are plain
    functions (Hypothesis drives them) and must not touch pytest-asyncio's loop."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def operations_of(definition: ServiceDefinition, settings: ServiceSettings) -> list[str]:
    """Every documented operation as ``METHOD /path``, read from the app's own document
    (building the app touches no database), for parametrising at collection time."""
    document = create_app(definition, settings).openapi()
    return [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
        and f"{method.upper()} {path}" not in EXCLUDED
    ]


def bearer(
    settings: ServiceSettings, organisation: str, kind: OrganisationKind, roles: list[Role]
) -> dict[str, str]:
    token = mint_token(
        settings,
        subject=f"fuzz-{kind.value}-{'-'.join(r.value for r in roles)}",
        organisation=organisation,
        kind=kind,
        roles=roles,
    )
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def migrated_database(admin_url: str, service: str) -> Iterator[str]:
    """A database of the module's own, migrated with the service's real revisions."""
    name = f"test_fuzz_{service}_{uuid.uuid4().hex[:10]}"
    run_sync(ensure_database(admin_url, name))
    url = with_database(admin_url, name)
    try:
        run_sync(asyncio.to_thread(upgrade, load_service(service), url))
        yield url
    finally:
        asgi.shutdown_lifespans()  # the app's engine lets go of the database first
        run_sync(drop_database(admin_url, name))


@contextlib.contextmanager
def client_of(app: Any) -> Iterator[ASGIClient]:
    """The app over schemathesis' own ASGI client (its lifespan on schemathesis' loop), for
    setting up what the fuzzing then finds: a case, a partner, a ruleset."""
    with get_client(app) as client:
        yield client


@dataclass
class Fuzzer:
    """One service's document and the callers it is fuzzed as. ``known`` maps a path
    parameter's name to a real id made in setup: half the examples act on a real object
    (deep into the use case), the other half on whatever the generator made (404s)."""

    schema: Any
    callers: Mapping[str, dict[str, str]]
    known: dict[str, str] = field(default_factory=dict)
    # What each operation answered, by status: shown with -s, to see how deep the run went.
    answers: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def operation(self, label: str) -> APIOperation:
        method, path = label.split(" ", 1)
        return self.schema[path][method]  # type: ignore[no-any-return]

    def run(self, label: str) -> None:
        operation = self.operation(label)
        modes = [GenerationMode.POSITIVE]
        definition = operation.definition.raw
        if definition.get("parameters") or definition.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            self._fuzz(operation, mode)
        print(label, dict(sorted(self.answers[operation.label].items())))

    def _fuzz(self, operation: APIOperation, mode: GenerationMode) -> None:
        @SETTINGS
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
        def fuzz(case: Any, real: bool) -> None:
            if real and case.path_parameters:
                for name in list(case.path_parameters):
                    if name in self.known:
                        case.path_parameters[name] = self.known[name]
            for caller, headers in self.callers.items():
                try:
                    response = case.call_and_validate(headers=headers, checks=CHECKS)
                    self.answers[operation.label][response.status_code] += 1
                except Exception as exc:
                    exc.add_note(f"caller: {caller}; generation mode: {mode.value}")
                    raise

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable:
            # Nothing breaks the schema of an operation whose only input is a free string.
            if mode is not GenerationMode.NEGATIVE:
                raise


def load(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)
