"""The compiled contracts shipped in ``neosl_devstack.contracts`` are those of today's sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neosl_devstack import contracts

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p.stem for p in (ROOT / "contracts").glob("*.py") if p.name != "build.py" and p.name[0] != "_"
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every source compiled afresh, the way ``make contracts`` does, into a throw-away folder."""
    out = tmp_path_factory.mktemp("contracts")
    # From elsewhere than the repository, as a check that the output does not depend on it.
    result = subprocess.run(
        [sys.executable, str(ROOT / "contracts" / "build.py"), "--out", str(out)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_every_source_is_shipped() -> None:
    assert SOURCES, "no contract sources found"
    assert contracts.names() == SOURCES, (
        "contracts/ and neosl_devstack.contracts differ: run make contracts"
    )


@pytest.mark.parametrize("name", SOURCES)
def test_shipped_artefacts_are_up_to_date(compiled: Path, name: str) -> None:
    stale = f"contracts/{name}.py changed: run make contracts"
    nef, manifest = contracts.artefact(name)
    assert (compiled / f"{name}.nef").read_bytes() == nef, stale
    assert json.loads((compiled / f"{name}.manifest.json").read_text()) == manifest, stale


def test_compiling_is_reproducible(compiled: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "contracts" / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in compiled.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_compiler_field_names_no_commit() -> None:
    nef, _ = contracts.artefact("consumer")
    assert nef[4:68].rstrip(b"\0") == b"neo3-boa by COZ-1.5.0"


def test_consumer_manifest() -> None:
    _, manifest = contracts.artefact("consumer")
    assert manifest["name"] == "Consumer"
    methods = {m["name"]: m for m in manifest["abi"]["methods"]}
    assert set(methods) == {"_deploy", "set", "get", "owner", "fail", "fail_from", "burn"}
    assert {name for name, m in methods.items() if m["safe"]} == {"get", "owner"}
    (event,) = manifest["abi"]["events"]
    assert event == {
        "name": "ValueSet",
        "parameters": [{"name": "key", "type": "String"}, {"name": "value", "type": "String"}],
    }


def test_load_by_name_or_path(tmp_path: Path) -> None:
    nef, manifest = contracts.load("consumer")
    (tmp_path / "c.nef").write_bytes(nef)
    (tmp_path / "c.manifest.json").write_text(json.dumps(manifest))
    assert contracts.load(str(tmp_path / "c.nef")) == (nef, manifest)
    with pytest.raises(contracts.UnknownContract, match="known: consumer"):
        contracts.artefact("nosuch")
    with pytest.raises(contracts.UnknownContract, match=r"nor a path to a \.nef file"):
        contracts.load("nosuch")
    (tmp_path / "bad.nef").write_bytes(nef)
    (tmp_path / "bad.manifest.json").write_text("[]")
    with pytest.raises(ValueError, match="not a contract manifest"):
        contracts.load(str(tmp_path / "bad.nef"))
