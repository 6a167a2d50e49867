"""The operators' compose file: valid against the Compose Specification, and wired to what
the services' own settings classes require. Reads files only; no Docker engine needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema import Draft202012Validator
from pydantic import SecretStr

from devtools.stack import SERVICE_NAMES, load_service

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = (DEPLOY / "docker-compose.yml").read_text()
_REQUIRED_VALUE = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
_DATABASE_URL = re.compile(
    r"^postgresql\+asyncpg://(?P<user>\w+):\$\{[A-Z_]+:\?[^}]*\}@(?P<host>[\w-]+):5432/(?P<db>\w+)$"
)


def wiring_problems(text: str) -> list[str]:
    """Every way the compose file fails the services; empty when it is right."""
    compose = yaml.safe_load(text)
    services: dict[str, Any] = compose["services"]
    problems: list[str] = []
    init = (DEPLOY / "postgres-init" / "01-databases.sh").read_text()
    kafka = services.get("kafka", {}).get("environment", {})
    for name, container in services.items():
        command = container.get("command") or []
        if command[:2] != ["python", "-m"] or not command[2].startswith("services."):
            continue
        service, role = command[2].split(".")[1], command[3]
        env = {k: str(v) for k, v in (container.get("environment") or {}).items()}
        for field_name, field in load_service(service).settings_class.model_fields.items():
            variable = f"UPSTREAM_{field_name.upper()}"
            secret = isinstance(field.default, SecretStr)
            if (field.is_required() or secret) and not env.get(variable):
                problems.append(f"{name}: {variable} is required by the {service} service")
            elif secret and not _REQUIRED_VALUE.match(env[variable]):
                problems.append(f"{name}: {variable} must have no usable default (${{X:?…}})")
        if env.get("UPSTREAM_ENVIRONMENT") != "production":
            problems.append(f"{name}: UPSTREAM_ENVIRONMENT must be production")
        host, _, port = env.get("UPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "").partition(":")
        if host not in services or f"INTERNAL://{host}:{port}" not in str(
            kafka.get("KAFKA_ADVERTISED_LISTENERS")
        ):
            problems.append(
                f"{name}: the bootstrap {host}:{port} is not the broker's internal listener"
            )
        match = _DATABASE_URL.match(env.get("UPSTREAM_DATABASE_URL", ""))
        if (
            not match
            or match["host"] not in services
            or match["user"] != service
            or (match["db"] != f"upstream_{service}")
            or service not in init
        ):
            problems.append(
                f"{name}: UPSTREAM_DATABASE_URL is not {service}'s own database "
                "on the postgres service"
            )
        depends = container.get("depends_on") or {}
        needs = {
            "migrate": {"postgres": "service_healthy"},
            "topics": {"kafka": "service_healthy"},
        }.get(
            role,
            {
                "kafka": "service_healthy",
                "topics": "service_completed_successfully",
                f"{name.rsplit('-', 1)[0]}-migrate": "service_completed_successfully",
            },
        )
        for dependency, condition in needs.items():
            if (depends.get(dependency) or {}).get("condition") != condition:
                problems.append(f"{name}: must depend on {dependency} ({condition})")
        health = " ".join(map(str, (container.get("healthcheck") or {}).get("test", [])))
        if role == "api":
            port = env.get("UPSTREAM_HTTP_PORT", "")
            if not any(str(p).endswith(f":{port}") for p in container.get("ports", [])):
                problems.append(f"{name}: the API port {port} is not published")
            if f"localhost:{port}/readyz" not in health:
                problems.append(f"{name}: the health check must ask /readyz on {port}")
        if role == "worker" and f":{env.get('UPSTREAM_WORKER_METRICS_PORT')}/metrics" not in health:
            problems.append(f"{name}: the health check must ask the worker's metrics port")
    for name, container in services.items():
        for dependency, rule in (container.get("depends_on") or {}).items():
            if rule.get("condition") == "service_healthy" and "healthcheck" not in services.get(
                dependency, {}
            ):
                problems.append(f"{name}: waits for {dependency} to be healthy; it has no check")
    roles = {tuple(c["command"][2:4]) for c in services.values() if c.get("command")}
    if not any(role == "topics" for _, role in roles):
        problems.append("no container creates the topics")
    for service in SERVICE_NAMES:
        for role in ("migrate", "api", "worker"):
            if (f"services.{service}", role) not in roles:
                problems.append(f"no container runs {service} {role}")
    return problems


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    errors = sorted(Draft202012Validator(schema).iter_errors(yaml.safe_load(COMPOSE)), key=str)
    assert errors == []


def test_the_compose_file_gives_every_service_what_its_settings_require() -> None:
    assert wiring_problems(COMPOSE) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: re.sub(r"\n  UPSTREAM_RESIDENT_KEY_SECRET: .*(?=\n  UPSTREAM_FLAG)", "", t),
            "risk-api: UPSTREAM_RESIDENT_KEY_SECRET is required by the risk service",
        ),
        (
            lambda t: re.sub(r"\n  UPSTREAM_DATABASE_URL: postgresql\+asyncpg://partners.*", "", t),
            "partners-worker: UPSTREAM_DATABASE_URL is required by the partners service",
        ),
        (
            lambda t: t.replace(
                "${UPSTREAM_JWT_SIGNING_KEY:?set UPSTREAM_JWT_SIGNING_KEY in deploy/.env}",
                "change-me",
            ),
            "referrals-api: UPSTREAM_JWT_SIGNING_KEY must have no usable default",
        ),
        (
            lambda t: t.replace(
                "UPSTREAM_KAFKA_BOOTSTRAP_SERVERS: kafka:9092",
                "UPSTREAM_KAFKA_BOOTSTRAP_SERVERS: kafka:29092",
            ),
            "risk-worker: the bootstrap kafka:29092 is not the broker's internal listener",
        ),
        (
            lambda t: t.replace('"${REFERRALS_PORT:-8001}:8001"', '"${REFERRALS_PORT:-8001}:8080"'),
            "referrals-api: the API port 8001 is not published",
        ),
        (
            lambda t: t.replace("upstream_risk\n", "upstream_referrals\n"),
            "risk-migrate: UPSTREAM_DATABASE_URL is not risk's own database",
        ),
    ],
    ids=[
        "secret removed",
        "database removed",
        "default secret",
        "wrong broker",
        "wrong port",
        "wrong database",
    ],
)
def test_the_check_fails_when_the_wiring_breaks(change, expected: str) -> None:
    broken = change(COMPOSE)
    assert broken != COMPOSE, "the change did not apply"
    assert any(problem.startswith(expected) for problem in wiring_problems(broken)), (
        wiring_problems(broken)
    )


def test_the_env_example_documents_every_variable_the_compose_file_reads() -> None:
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", COMPOSE))
    assert used - documented == set()


def compose_v2() -> tuple[list[str] | None, str]:
    """The Compose v2 command here, or why there is none. Compose 1.x (Debian's 1.29)
    predates the Compose Specification: it rejects ``name:`` and long-syntax ports."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, check=False
        )
        version = result.stdout.strip().lstrip("v")
        if result.returncode == 0 and version.split(".")[0].isdigit():
            if int(version.split(".")[0]) >= 2:
                return command, ""
            return None, f"{' '.join(command)} {version} predates the Compose Specification"
    return None, "Compose v2 is not installed"


def test_docker_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    command, why_not = compose_v2()
    if command is None:
        pytest.skip(why_not)
    env = tmp_path / ".env"
    env.write_text("\n".join(f"{v}=x" for v in re.findall(r"\$\{([A-Z][A-Z0-9_]+)", COMPOSE)))
    result = subprocess.run(
        [
            *command,
            "-f",
            str(DEPLOY / "docker-compose.yml"),
            "--env-file",
            str(env),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
