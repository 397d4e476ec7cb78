"""Compile every contract here into ``neosl_devstack.contracts`` (``make contracts``).

Usage: ``python contracts/build.py [--out DIR]``. Each ``NAME.py`` here (except this script)
becomes ``NAME.nef`` and ``NAME.manifest.json`` in ``DIR``, by default the folder the
services load them from. Exits 1 when a contract does not compile.

Output is reproducible: neo3-boa 1.5 asks git for the current directory's commit when it is
imported and writes it into every .nef's compiler field (``neo3-boa by COZ-1.5.0-<commit>``),
so every commit of this repository would change every contract's checksum, and so its hash.
That lookup is switched off below before the compiler is imported, which leaves the plain
``neo3-boa by COZ-1.5.0``. The compiler also lists a contract's events in the order of a set
of strings, which changes with Python's hash seed from run to run: the script runs itself
again with a fixed ``PYTHONHASHSEED`` first.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    # This same script, under this same interpreter: no shell, no other program.
    os.execve(  # noqa: S606
        sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
    )

from boa3.internal import git_helper


def _no_commit(short: bool = True) -> None:
    return None


# Must run before anything imports boa3.internal.constants, which reads the commit once.
git_helper._get_git_commit_hash = _no_commit

from boa3.boa3 import Boa3  # noqa: E402  (after the patch above, on purpose)
from boa3.internal.exception.NotLoadedException import NotLoadedException  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "devstack" / "src" / "neosl_devstack" / "contracts"


def sources(folder: Path = HERE) -> list[Path]:
    """The contract sources in ``folder``: every ``*.py`` but this script and private files."""
    return sorted(
        p for p in folder.glob("*.py") if p.name != "build.py" and not p.name.startswith("_")
    )


def compile_contract(source: Path, out: Path) -> tuple[Path, Path]:
    """Compile ``source`` into ``out``; returns the paths of the .nef and the manifest.

    Raises:
        NotLoadedException: the contract does not compile (the errors are logged).
    """
    out.mkdir(parents=True, exist_ok=True)
    nef = out / f"{source.stem}.nef"
    Boa3.compile_and_save(str(source), output_path=str(nef), log_level="ERROR")
    return nef, out / f"{source.stem}.manifest.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"default: {DEFAULT_OUT.relative_to(HERE.parent)}",
    )
    args = parser.parse_args(argv)
    failed = 0
    for source in sources():
        try:
            nef, manifest = compile_contract(source, args.out)
        except NotLoadedException:
            failed += 1
            print(f"error: {source.name} does not compile", file=sys.stderr)
            continue
        print(f"{source.name} -> {nef.name}, {manifest.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
