"""The Makefile works from any shell, the project's activated environment included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def activated() -> dict[str, str]:
    """The environment of a shell that ran `source .venv/bin/activate`."""
    venv = Path(sys.prefix)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MFLAGS")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_make_install_works_in_the_activated_environment() -> None:
    env = activated()
    # What made it fail: the environment's python3 comes first and has no uv.
    first = subprocess.run(
        ["sh", "-c", "command -v python3"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(first).parent == Path(sys.prefix) / "bin"
    assert subprocess.run([first, "-m", "uv", "--version"], env=env, capture_output=True).returncode
    done = subprocess.run(
        ["make", "-s", "install"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The Python it runs uv with is not the environment's.
    dry = subprocess.run(
        ["make", "-n", "install"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert f"{sys.prefix}/bin/python" not in dry.stdout, dry.stdout
