"""``upstream``: the operator's command line."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devtools.stack import (
    SERVICE_NAMES,
    StackSettings,
    all_topics,
    load_service,
    read_stack_file,
    run_stack,
    stop_running_stack,
)
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import create_engine, session_factory
from shared.events.asyncapi import asyncapi_document
from shared.events.catalogue import CATALOGUE
from shared.messaging import outbox
from shared.messaging.deadletters import pending_dead_letters, replay_dead_letters
from shared.messaging.kafka import ensure_topics
from shared.settings import AuthSettings

app = typer.Typer(help="Upstream operator commands.", no_args_is_help=True, add_completion=False)
outbox_app = typer.Typer(help="The transactional outbox of a service.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Dead-letter topics of consumer groups.", no_args_is_help=True)
signals_app = typer.Typer(help="Data signals for the risk service.", no_args_is_help=True)
app.add_typer(signals_app, name="signals")
app.add_typer(outbox_app, name="outbox")
app.add_typer(deadletters_app, name="deadletters")
console = Console()


def say(message: str) -> None:
    # soft_wrap: long tokens stay on one line so they copy whole.
    console.print(message, soft_wrap=True, highlight=False)


ServiceOption = Annotated[str, typer.Option(help="referrals, risk or partners")]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(help="The service's database; default: the running embedded stack's"),
]
BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers; default: the running embedded stack's broker"),
]


def _stack_info() -> dict:
    info = read_stack_file(StackSettings().state_dir)
    if info is None:
        raise typer.BadParameter(
            "no embedded stack is running here: start it with `make run`, "
            "or pass the connection option"
        )
    return info


def _database_url(service: str, given: str | None) -> str:
    if service not in SERVICE_NAMES:
        raise typer.BadParameter(f"unknown service {service!r}: one of {', '.join(SERVICE_NAMES)}")
    return given or _stack_info()["services"][service]["database_url"]


@app.command()
def up() -> None:
    """Start the whole system on embedded PostgreSQL and Tansu (what `make run` does)."""
    raise typer.Exit(run_stack(StackSettings(), AuthSettings(), echo=say))


@app.command()
def down() -> None:
    """Stop the embedded stack started from this folder."""
    stopped = stop_running_stack(StackSettings())
    console.print("stopped." if stopped else "no running stack found.")


@app.command()
def token(
    organisation: Annotated[str, typer.Option(help="GSS code of a council, or a partner id")],
    kind: Annotated[OrganisationKind, typer.Option()],
    role: Annotated[list[Role], typer.Option(help="repeat for several roles")],
    subject: Annotated[str, typer.Option(help="who the person is")] = "dev-user",
    name: Annotated[str | None, typer.Option()] = None,
    hours: Annotated[float, typer.Option(help="validity")] = 12.0,
) -> None:
    """Mint a development bearer token (signed with the local development key)."""
    settings = AuthSettings()
    if settings.jwt_jwks_url:
        raise typer.BadParameter("this deployment verifies tokens from a JWKS; mint them there")
    try:
        token = mint_token(
            settings,
            subject=subject,
            organisation=organisation,
            kind=kind,
            roles=role,
            name=name,
            ttl=timedelta(hours=hours),
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    console.print(token, soft_wrap=True)


@app.command()
def topics(
    bootstrap: BootstrapOption = None,
    partitions: Annotated[int, typer.Option(min=1)] = 6,
    replication_factor: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Create every topic the services use (and their dead-letter topics) if missing."""
    servers = bootstrap or _stack_info()["broker"]
    specs = all_topics(partitions=partitions, replication_factor=replication_factor)
    created = asyncio.run(ensure_topics(servers, specs))
    console.print(f"{len(specs)} topics; created: {', '.join(created) or 'none (all existed)'}")


@app.command()
def migrate(
    service: Annotated[list[str] | None, typer.Option(help="default: every service")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run services' migrations (alembic upgrade head)."""
    from shared.migrations import upgrade

    names = service or list(SERVICE_NAMES)
    if database_url and len(names) != 1:
        raise typer.BadParameter("--database-url goes with exactly one --service")
    for name in names:
        upgrade(load_service(name), _database_url(name, database_url))
        console.print(f"{name}: migrated to head")


@outbox_app.command("replay")
def outbox_replay(
    service: ServiceOption,
    since: Annotated[datetime | None, typer.Option(help="only events created since")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Publish retained events again (e.g. into a fresh broker); consumers skip duplicates."""
    url = _database_url(service, database_url)

    async def run() -> int:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await outbox.replay(session, since=since)
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    console.print(f"{service}: {count} retained events queued; the worker's relay publishes them")


@deadletters_app.command("replay")
def deadletters_replay(
    group: Annotated[str, typer.Option(help="consumer group, e.g. referrals")],
    limit: Annotated[int | None, typer.Option(help="at most this many")] = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Send a group's dead letters back to their original topics, once each."""
    servers = bootstrap or _stack_info()["broker"]
    total = asyncio.run(pending_dead_letters(servers, group))
    if limit is not None:
        total = min(total, limit)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"replaying {group}.dlq", total=total)
        count = asyncio.run(
            replay_dead_letters(
                servers, group, limit=limit, on_replayed=lambda n: progress.advance(task, n)
            )
        )
    console.print(f"{count} dead letters replayed")


@signals_app.command("import")
def signals_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="a .csv (with a header row) or .ndjson file",
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(help="a data_feed token; default: a development token for --council"),
    ] = None,
    council: Annotated[str, typer.Option(help="with no --token: whose data team")] = "E09000025",
    url: Annotated[
        str | None, typer.Option(help="the risk service; default: the running embedded stack's")
    ] = None,
) -> None:
    """Stream a signal file to the risk service, showing progress; print the report."""
    import httpx

    fmt = "text/csv" if file.suffix.lower() == ".csv" else "application/x-ndjson"
    base = url or _stack_info()["services"]["risk"]["api"]
    if token is None:
        token = mint_token(
            AuthSettings(),
            subject="cli-data-feed",
            organisation=council,
            kind=OrganisationKind.COUNCIL,
            roles=[Role.DATA_FEED],
            ttl=timedelta(hours=2),
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=file.stat().st_size)

        def chunks():
            with file.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    progress.advance(task, len(chunk))
                    yield chunk

        response = httpx.post(
            f"{base}/v1/signals/import",
            content=chunks(),
            timeout=None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": fmt},
        )
    if response.status_code != 200:
        console.print(f"refused ({response.status_code}): {response.text}")
        raise typer.Exit(1)
    report = response.json()
    say(
        f"read {report['rows_read']}, stored {report['rows_stored']}, already held "
        f"{report['rows_duplicate']}, rejected {report['rows_rejected']}, flagged "
        f"{report['flagged']}, cases re-assessed {report['cases_assessed']}"
    )
    for error in report["errors"][:50]:
        say(f"  line {error['line']}: {error['field']}: {error['reason']}")
    if report["errors_truncated"] or len(report["errors"]) > 50:
        say("  … more rejected rows not shown")


@app.command("open-statistics")
def open_statistics(
    council: Annotated[str, typer.Option(help="the council's GSS code, e.g. E09000025")],
    month: Annotated[str, typer.Option(help="the calendar month, YYYY-MM (a closed one)")],
    output: Annotated[
        Path, typer.Option(file_okay=False, help="the folder to write the package into")
    ],
    token: Annotated[
        str | None,
        typer.Option(help="a manager's or IG token; default: a development manager's token"),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="the referrals service; default: the running embedded stack's"),
    ] = None,
) -> None:
    """Export a council's month of open statistics (counts under disclosure control, a
    Frictionless data package for the London Datastore) from the referrals service's
    reporting model: writes datapackage.json and one CSV per table into OUTPUT."""
    import csv
    import io
    import zipfile

    import httpx

    from devtools.open_statistics import summary
    from services.referrals.service_layer.open_statistics import (
        OpenStatistics,
        TableSummary,
        fresh_output,
    )

    try:
        fresh_output(output)  # an earlier export's files would be uploaded with this one
    except ValueError as refused:
        say(f"refused: {refused}")
        raise typer.Exit(1) from None
    base = url or _stack_info()["services"]["referrals"]["api"]
    if token is None:
        token = mint_token(
            AuthSettings(),
            subject="cli-manager",
            organisation=council,
            kind=OrganisationKind.COUNCIL,
            roles=[Role.MANAGER],
            ttl=timedelta(hours=1),
        )
    response = httpx.get(
        f"{base}/v1/reports/{council}/open-statistics/{month}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    if response.status_code != 200:
        say(f"refused ({response.status_code}): {response.text}")
        raise typer.Exit(1)
    output.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        # Only the package's own flat names: nothing can land outside the folder.
        names = [n for n in archive.namelist() if n == Path(n).name]
        for name in names:
            (output / name).write_bytes(archive.read(name))
    descriptor = output / "datapackage.json"
    tables = []
    for resource in json.loads(descriptor.read_text())["resources"]:
        path = output / resource["path"]
        with path.open(newline="", encoding="utf-8") as file:
            markers = [row["marker"] for row in csv.DictReader(file)]
        withheld = sum(1 for marker in markers if marker)
        tables.append(TableSummary(resource["name"], path, len(markers) - withheld, withheld))
    console.print(summary(OpenStatistics(descriptor, tuple(tables))))


@app.command("inbox-link")
def inbox_link() -> None:
    """Sign the demo food bank into the partner web inbox in one step: prints a sign-in link
    (single-use, valid for minutes) read from the dev SMTP server."""
    from devtools.inbox_link import DEMO_ADDRESS, DEMO_PARTNER, sign_in_link

    info = _stack_info()
    settings = StackSettings()
    link = sign_in_link(
        info["services"]["partners"]["api"], settings.state_dir / "mail", AuthSettings()
    )
    say(f"{DEMO_PARTNER} ({DEMO_ADDRESS}): open this link to sign in to its web inbox")
    say(link)


@app.command()
def demo(
    referrals: Annotated[int, typer.Option(envvar="UPSTREAM_DEMO_REFERRALS", min=1)] = 200,
    households: Annotated[int, typer.Option(envvar="UPSTREAM_DEMO_HOUSEHOLDS", min=1)] = 20_000,
    keep: Annotated[
        bool, typer.Option(help="leave the demo's stack running after the tables, until Ctrl-C")
    ] = False,
    json_to: Annotated[
        str | None,
        typer.Option(
            "--json",
            help="also write the summary as JSON to this file, or to standard output "
            "with `-` (the tables then go to standard error)",
        ),
    ] = None,
) -> None:
    """A realistic day for Newham and Hackney through a stack of its own; prints what
    happened as tables, and the addresses to open."""
    from devtools.demo import main as run_demo

    out = Console(stderr=True) if json_to == "-" else console

    def progress(message: str) -> None:
        out.print(message, soft_wrap=True, highlight=False)

    run_demo(referrals, households, echo=progress, console=out, keep=keep, json_to=json_to)


@app.command("check-borough")
def check_borough(
    file: Annotated[
        Path, typer.Argument(dir_okay=False, help="the borough's configuration (YAML)")
    ],
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="the deployment's KEY=value settings (deploy/.env); default: the "
            "file's settings.env_file, then the environment"
        ),
    ] = None,
) -> None:
    """Check a borough's configuration before go-live: each check, passed or failed and why;
    exits non-zero when any fails."""
    from devtools.borough import check_borough as run_checks

    checks, _ = run_checks(file, env_file=env_file)
    for check in checks:
        mark = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"{mark}  {check.field}: {check.reason}", soft_wrap=True, highlight=False)
    failed = sum(1 for check in checks if not check.passed)
    say(f"{len(checks) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("replicate-docs")
def replicate_docs(
    file: Annotated[
        Path, typer.Argument(dir_okay=False, help="the borough's configuration (YAML)")
    ],
    output: Annotated[Path, typer.Option(help="the folder to write the outlines into")],
) -> None:
    """Render each council's data-sharing-agreement and DPIA outlines from a borough's
    configuration (Markdown); refused while the configuration itself is not valid."""
    from devtools.borough import check_borough as run_checks
    from devtools.borough import render_outlines

    # Secrets do not shape the outlines: only what they are rendered from must hold.
    checks, borough = run_checks(file, environment={})
    unusable = [c for c in checks if not c.passed and not c.field.startswith("UPSTREAM_")]
    if borough is None or unusable:
        for check in unusable or checks:
            say(f"FAIL  {check.field}: {check.reason}")
        raise typer.Exit(1)
    for path in render_outlines(borough, output):
        say(f"wrote {path}")


@app.command()
def asyncapi(
    output: Annotated[Path | None, typer.Option(help="write here instead of printing")] = None,
) -> None:
    """The AsyncAPI 3.0 document of every event, generated from the registry."""
    document = json.dumps(asyncapi_document(CATALOGUE), indent=2) + "\n"
    if output:
        output.write_text(document)
        console.print(f"wrote {output}")
    else:
        print(document, end="")


if __name__ == "__main__":
    app()
