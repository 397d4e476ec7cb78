"""The services' Dockerfiles, checked without a Docker engine: hadolint passes, each installs
its own service from the lock without development tools (the very `uv sync` of its build
stage, run here), and runs a module of that service that the Procfile runs too. And every
variable the code reads is documented in the README's configuration table."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.envvars import readme_variables, variables_read

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))
# What a build stage copies from the repository (see .dockerignore).
BUILD_CONTEXT = ("pyproject.toml", "uv.lock", "shared", "services", "cli", "devstack", "client")


def dockerfile(service: str) -> str:
    return (ROOT / "services" / service / "Dockerfile").read_text()


def package_name(service: str) -> str:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    name: str = project["project"]["name"]
    return name


def command(service: str) -> list[str]:
    (line,) = [ln for ln in dockerfile(service).splitlines() if ln.startswith("CMD ")]
    args: list[str] = json.loads(line.removeprefix("CMD "))
    return args


def module(args: list[str]) -> str:
    """The Python module a command runs: ``python -m X`` or gunicorn's ``X:app()``."""
    if args[:2] == ["python", "-m"]:
        return args[2]
    assert args[0] == "gunicorn", args
    return args[-1].split(":")[0]


def run_build_stage_sync(sync: str, folder: Path) -> None:
    """Run a build stage's ``uv sync …`` step in ``folder``, a copy of the build context (as
    the image's /app), with the uv that runs the tests."""
    for name in BUILD_CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, folder / name, ignore=shutil.ignore_patterns(".venv", "__pycache__")
            )
        else:
            shutil.copy2(source, folder / name)
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv runs the tests (make test), so it is on hand"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON"] = sys.executable
    done = subprocess.run(
        [uv, *sync.split()[1:], "--quiet"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def procfile_modules() -> set[str]:
    found = set()
    for line in (ROOT / "Procfile").read_text().splitlines():
        if m := re.search(r"python -m (\S+)", line):
            found.add(m.group(1))
        if m := re.search(r"'([\w.]+):\w+\(\)'", line):
            found.add(m.group(1))
    return found


def test_every_service_has_a_dockerfile() -> None:
    assert SERVICES == ["api", "executor", "gasbank", "pricefeed", "scheduler"]
    for service in SERVICES:
        assert (ROOT / "services" / service / "Dockerfile").is_file(), service


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes(service: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), str(ROOT / "services" / service / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_a_non_root_user_from_a_slim_base(service: str) -> None:
    text = dockerfile(service)
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases
    assert all(b.endswith("-slim") for b in bases), bases
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER 10001:10001" in final
    # The final stage copies the environment only: no uv, no compilers.
    assert "pip install" not in final
    assert "uv sync" not in final


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_installs_the_service_from_the_lock(service: str, tmp_path: Path) -> None:
    text = dockerfile(service)
    (sync,) = re.findall(r"^RUN (uv sync .*)$", text, re.MULTILINE)
    assert f"--package {package_name(service)}" in sync
    # The operator's command comes along (the API's image runs the migrations with it).
    assert "--package neosl-cli" in sync
    assert "--frozen" in sync
    assert "--no-dev" in sync
    run_build_stage_sync(sync, tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    runs = module(command(service))
    imported = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.util as u, sys; import {runs.split('.')[0]}; "
            f"sys.exit(0 if u.find_spec({runs!r}) else 1)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert (tmp_path / ".venv" / "bin" / "neosl").is_file()
    # Development tools stay out of the image.
    for tool in ("pytest", "mypy", "ruff", "boa3"):
        found = subprocess.run(
            [
                str(python),
                "-c",
                f"import importlib.util as u, sys; sys.exit(bool(u.find_spec({tool!r})))",
            ],
            check=False,
        )
        assert found.returncode == 0, f"{tool} is installed in the {service} image"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_what_the_procfile_runs(service: str) -> None:
    runs = module(command(service))
    assert runs in procfile_modules()
    src = ROOT / "services" / service / "src"
    assert (src / runs.split(".")[0]).is_dir(), f"{runs} is not the {service} service's"


def test_every_variable_the_code_reads_is_in_the_readme() -> None:
    read = variables_read()
    documented = readme_variables()
    assert "NSL_PRICE_SOURCE_<NAME>_URL" in documented  # the one name made at run time
    assert len(read) > 50
    assert read - documented == set()
