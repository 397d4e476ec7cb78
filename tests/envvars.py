"""The environment variables the services read, for the checks that each deployment path
(README table, compose file, Kubernetes ConfigMap and Secret references) names them all."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LITERAL = re.compile(r'"((?:NSL_[A-Z0-9_]+)|DATABASE_URL|REDIS_URL|NEO_RPC_URLS?)"')


def variables_read() -> set[str]:
    """Every variable named as a literal in the services' code or used by the Procfile."""
    read: set[str] = set()
    for path in [
        *ROOT.glob("shared/src/**/*.py"),
        *ROOT.glob("services/*/src/**/*.py"),
        *ROOT.glob("cli/src/**/*.py"),
    ]:
        read.update(_LITERAL.findall(path.read_text()))
    read.update(re.findall(r"\$\{(NSL_[A-Z0-9_]+)", (ROOT / "Procfile").read_text()))
    return read


def readme_variables() -> set[str]:
    """The names in the first column of the README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_<>]+)`", cell)}
