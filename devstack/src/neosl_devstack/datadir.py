"""What a dev stack's data folder tells other commands: its keys, and what is running there.

``secrets.env`` holds the keys generated for the stack (see ``Stack.secrets``).
``stack.json`` is written by ``neosl-dev up`` once its servers answer and its environment is
final, and removed when it stops cleanly: the pid of ``neosl-dev up``, the ports, URLs and
variables of that stack. ``neosl-dev env`` reads it rather than guessing from its own
environment, so a shell without the ``NSL_DEV_*`` variables of ``neosl-dev up`` still
reaches the stack that really runs there. A file left by a ``neosl-dev up`` that was killed
names a process that is gone (or a reused pid with another start time): no stack runs.

This module only reads and writes small files: ``neosl-dev env`` imports it and must start
fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SECRETS_FILE = "secrets.env"
RUNNING_FILE = "stack.json"


def read_secrets(root: Path) -> dict[str, str]:
    """The keys kept in ``root``'s ``secrets.env`` (none if it does not exist)."""
    path = root / SECRETS_FILE
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@dataclass(frozen=True)
class RunningStack:
    """A running ``neosl-dev up``: what it started and what ``neosl-dev env`` exports."""

    pid: int
    # The process's start time (Linux: clock ticks after boot), telling it from a later
    # process given the same pid; None where it cannot be read.
    started: str | None
    # Those of its own: "api", "flower", "metrics" (the API's; the workers' follow) and
    # for each embedded server "postgres", "redis", "neo_rpc", "neo_p2p".
    ports: dict[str, int]
    flower_url: str
    # DATABASE_URL, REDIS_URL, NEO_RPC_URL (and NEO_RPC_URLS if it was given), API (the
    # API's base URL) and, with the embedded chain, NSL_DEVNET_WALLET.
    exports: dict[str, str]
    # The keys of secrets.env the stack uses (the others were set in its environment).
    secrets: list[str]

    def is_alive(self) -> bool:
        """Whether the process that wrote this record still runs."""
        if self.started is not None:
            return process_start(self.pid) == self.started
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, from ``/proc`` (None: no such live process, or no
    ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the command's name, in parentheses (which may hold anything), come the state
    # (field 3) and, 19 fields on, the start time (field 22).
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def write_running(root: Path, record: RunningStack) -> None:
    """Write ``root``'s ``stack.json`` at once (never seen half-written), readable by its
    owner only: an outside ``DATABASE_URL`` may hold a password."""
    path = root / RUNNING_FILE
    temporary = root / f".{RUNNING_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(record), out, indent=2)
        out.write("\n")
    os.replace(temporary, path)


def read_running(root: Path) -> RunningStack | None:
    """``root``'s ``stack.json``, or None if there is none.

    Raises:
        ValueError: the file is not a record of this version of ``neosl-dev``.
    """
    try:
        text = (root / RUNNING_FILE).read_text()
    except FileNotFoundError:
        return None
    try:
        return RunningStack(**json.loads(text))
    except TypeError as exc:
        raise ValueError(f"not a dev stack record: {exc}") from exc


def remove_running(root: Path, pid: int) -> None:
    """Remove ``root``'s ``stack.json`` if process ``pid`` wrote it."""
    try:
        record = read_running(root)
    except ValueError:
        return
    if record is not None and record.pid == pid:
        (root / RUNNING_FILE).unlink(missing_ok=True)
