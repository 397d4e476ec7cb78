"""`neosl` starts fast: its parser and `--help` import none of the slow packages.

Checked by what a fresh interpreter has imported, not by a timing: SQLAlchemy, Celery,
neo-mamba, httpx and cryptography each take from a tenth of a second to seconds to import
on a small machine, and only the commands that use them may import them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from neosl_cli.main import build_parser

HEAVY = {
    "argon2",
    "celery",
    "cryptography",
    "flask",
    "httpx",
    "kombu",
    "neo3",
    "prometheus_client",
    "psycopg",
    "quickjs",
    "redis",
    "sqlalchemy",
}

# Runs `neosl ARGS` in a fresh interpreter and prints the packages it imported.
_PROBE = """
import json, sys
from neosl_cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(*args: str) -> set[str]:
    """Every module a fresh ``neosl ARGS`` imported (the list is its last line of output)."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return set(modules)


def packages(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def subcommands() -> list[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    raise AssertionError("neosl has no subcommands")


def test_help_imports_no_heavy_package() -> None:
    modules = imported_by("--help")
    assert packages(modules) & HEAVY == set()
    # The dev stack's commands were loaded through the entry point, and cheaply too.
    assert "neosl_devstack.devnet_commands" in modules


def test_every_subcommands_help_imports_no_heavy_package() -> None:
    names = subcommands()
    assert {"db", "ledger", "functions", "devnet", "neo"} <= set(names)
    for name in names:
        assert packages(imported_by(name, "--help")) & HEAVY == set(), name


def test_a_command_imports_only_what_it_uses() -> None:
    used = packages(imported_by("neo", "relay-keygen")) & HEAVY
    assert used == {"cryptography"}
