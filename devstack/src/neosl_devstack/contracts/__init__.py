"""The project's own Neo N3 contracts, compiled: ``NAME.nef`` and ``NAME.manifest.json``.

The sources live in the repository's ``contracts/`` folder; ``make contracts`` compiles them
into this package, which ships the files, so services and the ``neosl`` command load them
without a compiler.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

NEF_SUFFIX = ".nef"
MANIFEST_SUFFIX = ".manifest.json"


class UnknownContract(LookupError):
    """No compiled contract of that name is shipped; the message lists those that are."""


def names() -> list[str]:
    """The names of the shipped contracts (e.g. "consumer"), sorted."""
    return sorted(
        entry.name.removesuffix(NEF_SUFFIX)
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(NEF_SUFFIX)
    )


def _parse_manifest(text: str, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str):
        raise ValueError(f"{where} is not a contract manifest (no name)")
    return manifest


def artefact(name: str) -> tuple[bytes, dict[str, Any]]:
    """The .nef bytes and the parsed manifest of the shipped contract ``name``.

    Raises:
        UnknownContract: no such contract is shipped.
    """
    known = names()
    if name not in known:
        raise UnknownContract(f"no contract {name!r}; known: {', '.join(known) or 'none'}")
    folder = resources.files(__name__)
    nef = folder.joinpath(name + NEF_SUFFIX).read_bytes()
    manifest_name = name + MANIFEST_SUFFIX
    return nef, _parse_manifest(folder.joinpath(manifest_name).read_text(), manifest_name)


def read(nef_path: Path) -> tuple[bytes, dict[str, Any]]:
    """A .nef file and the parsed ``NAME.manifest.json`` next to it.

    Raises:
        OSError: either file cannot be read.
        ValueError: ``nef_path`` does not end in .nef, or the manifest is not one.
    """
    if nef_path.suffix != NEF_SUFFIX:
        raise ValueError(f"{nef_path} is not a .nef file")
    manifest_path = nef_path.with_name(nef_path.name.removesuffix(NEF_SUFFIX) + MANIFEST_SUFFIX)
    nef = nef_path.read_bytes()
    return nef, _parse_manifest(manifest_path.read_text(), str(manifest_path))


def load(contract: str) -> tuple[bytes, dict[str, Any]]:
    """A shipped contract by name, or else the .nef file at the path ``contract``.

    Raises:
        UnknownContract: ``contract`` is neither a shipped name nor a path ending in .nef.
        OSError, ValueError: as ``read``.
    """
    if contract in names():
        return artefact(contract)
    if not contract.endswith(NEF_SUFFIX):
        raise UnknownContract(
            f"{contract!r} is neither a known contract ({', '.join(names()) or 'none'}) "
            "nor a path to a .nef file"
        )
    return read(Path(contract))
