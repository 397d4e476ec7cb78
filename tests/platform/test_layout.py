"""The tree shows the architecture: checks that keep it that way.

- Platform modules (the top of ``neosl``) import no domain package: a domain registers with
  the platform, never the other way round.
- ``shared/`` holds only what two or more processes use (directly or through other shared
  modules); what one process owns lives in its package.
- Services never import one another; the CLI imports no service.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared" / "src" / "neosl"
DOMAINS = ("gas", "functions", "triggers", "pricefeeds", "onchain")
# Each process's own packages, and where their sources are.
PROCESSES = {
    "api": ROOT / "services/api/src/neosl_api",
    "executor": ROOT / "services/executor/src/neosl_executor",
    "scheduler": ROOT / "services/scheduler/src/neosl_scheduler",
    "pricefeed": ROOT / "services/pricefeed/src/neosl_pricefeed",
    "gasbank": ROOT / "services/gasbank/src/neosl_gasbank",
    "cli": ROOT / "cli/src/neosl_cli",
    "devstack": ROOT / "devstack/src/neosl_devstack",
}


# Modules started as processes of their own rather than imported (``python -m …``).
STARTS = {"neosl.functions.sandbox.pool": "neosl.functions.sandbox.child"}


def module_name(path: Path, base: Path, package: str) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> Iterator[str]:
    """Every module ``path`` imports (``from a import b`` yields ``a`` and ``a.b``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def shared_modules() -> dict[str, Path]:
    return {module_name(p, SHARED, "neosl"): p for p in SHARED.rglob("*.py")}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The shared module ``name`` refers to (a module, or a name inside one), if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def test_platform_modules_import_no_domain() -> None:
    modules = shared_modules()
    platform = {name: path for name, path in modules.items() if name.count(".") == 1}
    assert "neosl.config" in platform
    assert "neosl.tasks" in platform
    for name, path in platform.items():
        for target in imported(path):
            domain = target.split(".")[1] if target.startswith("neosl.") else None
            assert domain not in (*DOMAINS, "neo"), f"{name} imports {target}"


def test_no_loose_domain_module_at_the_top() -> None:
    top = {p.stem for p in SHARED.glob("*.py")}
    assert top == {
        "__init__",
        "broker",
        "celery_app",
        "closing",
        "config",
        "db",
        "dispatch",
        "errors",
        "exporter",
        "jobs",
        "logs",
        "metrics",
        "migrate",
        "resources",
        "tasks",
        "worker_main",
    }
    packages = {p.name for p in SHARED.iterdir() if (p / "__init__.py").exists()}
    assert packages == {*DOMAINS, "neo", "models"}


def test_every_shared_module_serves_two_processes_or_more() -> None:
    modules = shared_modules()
    edges = {
        name: {t for t in (resolve(i, modules) for i in imported(path)) if t}
        for name, path in modules.items()
    }
    for starter, started in STARTS.items():
        assert started in modules
        assert starter in modules
        edges[starter].add(started)
    # A package's __init__ is used whenever one of its modules is.
    for name in modules:
        parent = name.rpartition(".")[0]
        while parent in modules:
            edges[name].add(parent)
            parent = parent.rpartition(".")[0]
    users: dict[str, set[str]] = {name: set() for name in modules}
    for process, source in PROCESSES.items():
        seen: set[str] = set()
        todo = [resolve(i, modules) for p in source.rglob("*.py") for i in imported(p)]
        while todo:
            found = todo.pop()
            if found is None or found in seen:
                continue
            name = found
            seen.add(name)
            users[name].add(process)
            todo.extend(edges[name])
    lonely = {name: sorted(u) for name, u in users.items() if len(u) < 2}
    assert lonely == {}, "move these into the one process that uses them"


def test_services_and_the_cli_import_no_service() -> None:
    services = {
        "neosl_api",
        "neosl_executor",
        "neosl_scheduler",
        "neosl_pricefeed",
        "neosl_gasbank",
    }
    for process, source in PROCESSES.items():
        if process == "devstack":
            continue  # the dev stack runs the services; it may use their code
        own = f"neosl_{process}"
        for path in source.rglob("*.py"):
            for target in imported(path):
                package = target.split(".")[0]
                assert package not in services - {own}, f"{path.relative_to(ROOT)}: {target}"
