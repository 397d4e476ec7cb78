"""README.md runs as written: its shell blocks, in one shell, against a fresh dev stack.

The test starts `neosl-dev up` from a clean data folder on free ports, with `make dev`'s
defaults (a new tenant's starter balance among them), waits for /readyz,
then runs README.md's ```sh blocks, in order, as a reader would in a second shell after
`make dev`, and stops at the first command that fails or whose answer is not the README's.

- **Blocks.** Every ```sh block runs, but those of the sections in ``SKIPPED``: the
  Quickstart's (`make dev` is the stack this test started, `make test` the whole suite) and
  "Container images" (it needs a Docker engine). Other fences (```js, ```json, ```) never run.
- **The shell.** One `bash` process for all of them, so variables carry over. Its folder
  stands in for the repository's root: `.venv` and `examples` link to the repository's, `.dev`
  to the test stack's data folder, so `source .venv/bin/activate` and
  `eval "$(neosl-dev env)"` work as written. PATH has `.venv/bin` first; no variable of the
  stack is set beforehand. `set -u -o pipefail`: an unset variable, or a failing command
  anywhere in a pipe, fails the command.
- **Commands.** A command starts at a line that is neither blank nor a comment and takes the
  following lines until bash finds it complete (`bash -n`, and no trailing backslash). Each is
  sourced in the shell and must exit 0.
- **Answers.** Among the comment lines right after a command, one starting with `# →` is its
  answer, continued by the comment lines right after it that start with `#` and two spaces or
  more (joined with one space). It reads `# → [STATUS] ANSWER[  (REMARK)]`:
  - STATUS, three digits: the HTTP status of the command's last curl. In the test's shell
    `curl` is a function that adds `-w` to print the status on stderr; the README stays
    plain. Without a STATUS, every curl of the command must get an answer below 400.
  - ANSWER is compared with the command's stdout. When it starts with `{` or `[`, stdout must
    be JSON, written back with `json.dumps` (", " and ": ", the keys in the order the API sent
    them: alphabetical); otherwise each run of whitespace, in both, becomes one space. ANSWER
    cut at each `…` gives pieces that must appear in the answer in that order, the first at
    its start and the last at its end (an ANSWER starting or ending with `…` frees that end).
  - REMARK, in parentheses after two spaces at the end, is for the reader. One that begins
    with "within" (`(within a few seconds: …)`) says the answer comes later: the command runs
    again until its answer matches, for up to ``WAIT_SECONDS``.
- **After the last block** the stack's log holds no traceback. Then, as on every path,
  failures included, the stack is killed with every process it started (``DevStack``), and
  so is the shell with whatever it started.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_dev_stack import STACK_VARIABLES, DevStack

# Sections whose ```sh blocks do not run, and why.
SKIPPED = {
    "Quickstart": "`make dev` is the stack the test started; `make test` is the whole suite",
    "Container images": "needs a Docker engine",
}
# How long an answer said to come "within" some time may take; one command's time limit.
WAIT_SECONDS = 90.0
COMMAND_SECONDS = 120.0
ARROW = "# →"
# The test's curl prints the HTTP status on stderr after this.
STATUS_MARK = "@@curl-status"
SHELL_SETUP = f"""set -u -o pipefail
curl() {{ command curl -w '%{{stderr}}\\n{STATUS_MARK} %{{http_code}}\\n' "$@"; }}
"""


@dataclass(frozen=True)
class Expected:
    """A `# →` comment: the HTTP status, the answer's text and whether it comes later."""

    status: int | None
    answer: str
    later: bool
    comment: str


@dataclass(frozen=True)
class Command:
    section: str
    line: int  # in README.md, of the command's first line
    text: str
    expected: Expected | None

    def where(self) -> str:
        return f'README.md:{self.line} ("{self.section}")'


def sh_blocks(readme: str) -> list[tuple[str, int, list[str]]]:
    """(section, line of the block's first line, its lines) of each ```sh block that runs."""
    found = []
    section = ""
    lines = readme.splitlines()
    fence: int | None = None  # the line of the open fence, if any
    for number, line in enumerate(lines, start=1):
        if fence is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                fence = number
        elif line.startswith("```"):
            if lines[fence - 1].strip() == "```sh" and section not in SKIPPED:
                found.append((section, fence + 1, lines[fence : number - 1]))
            fence = None
    return found


def is_complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    checked = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    return checked.returncode == 0


def commands(section: str, first_line: int, lines: list[str]) -> list[Command]:
    """The commands of one block, each with the answer its comment shows.

    Raises:
        AssertionError: the block ends inside a command.
    """
    found = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        start = i
        text = lines[i]
        while not is_complete(text):
            i += 1
            if i == len(lines):
                raise AssertionError(f"README.md:{first_line + start}: an unfinished command")
            text += "\n" + lines[i]
        i += 1
        comments = []
        while i < len(lines) and lines[i].lstrip().startswith("#"):
            comments.append(lines[i].strip())
            i += 1
        found.append(Command(section, first_line + start, text, expected(comments)))
    return found


def expected(comments: list[str]) -> Expected | None:
    """The `# →` comment among ``comments``, with its continuation lines, or None."""
    for k, comment in enumerate(comments):
        if not comment.startswith(ARROW):
            continue
        parts = [comment.removeprefix(ARROW).strip()]
        for more in comments[k + 1 :]:
            if not re.match(r"#\s{2,}\S", more):
                break
            parts.append(more[1:].strip())
        text = " ".join(parts)
        found = re.fullmatch(r"(?:(\d{3})(?:\s+|$))?(.*?)(?:\s{2,}\(([^()]*)\))?", text)
        assert found is not None, text
        status, answer, remark = found.groups()
        return Expected(
            status=int(status) if status else None,
            answer=answer.strip(),
            later=(remark or "").startswith("within"),
            comment=text,
        )
    return None


def readme_commands(readme: Path) -> list[Command]:
    found = []
    for section, first_line, lines in sh_blocks(readme.read_text()):
        found.extend(commands(section, first_line, lines))
    return found


def fits(answer: str, output: str) -> bool:
    """Whether ``output`` is what ``answer`` shows: its pieces between `…`, in order, the
    first at the start and the last at the end."""
    pieces = answer.split("…")
    if len(pieces) == 1:
        return output == answer
    if not output.startswith(pieces[0]):
        return False
    position = len(pieces[0])
    for piece in pieces[1:-1]:
        found = output.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return output.endswith(pieces[-1]) and len(output) - len(pieces[-1]) >= position


def shown(answer: str, stdout: str) -> str:
    """``stdout`` as the README writes answers like ``answer``.

    Raises:
        ValueError: ``answer`` is JSON and ``stdout`` is not.
    """
    if answer.startswith(("{", "[")):
        return json.dumps(json.loads(stdout), ensure_ascii=False)
    return " ".join(stdout.split())


@dataclass(frozen=True)
class Ran:
    status: int  # the exit status; -1 when the shell itself ended
    stdout: str
    stderr: str
    http: list[int]  # the statuses of the command's curls, in order


class Shell:
    """One bash process that runs commands one at a time, each sourced from a file so that
    its variables stay, with its stdout and stderr kept apart in files."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.runs = folder.parent / f"{folder.name}-runs"
        self.runs.mkdir()
        self.count = 0
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.runs / "shell.err").open("wb"),
            start_new_session=True,
        )
        self.pending = b""

    def run(self, text: str, timeout: float = COMMAND_SECONDS) -> Ran:
        self.count += 1
        script, out, err = (self.runs / f"{self.count:03}.{ext}" for ext in ("sh", "out", "err"))
        script.write_text(text + "\n")
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f'. {script} >{out} 2>{err}; echo "@@done $?"\n'.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.read_line(timeout)
        stdout = out.read_text(errors="replace") if out.exists() else ""
        stderr = err.read_text(errors="replace") if err.exists() else ""
        http = [int(s) for s in re.findall(rf"^{STATUS_MARK} (\d+)$", stderr, re.M)]
        stderr = re.sub(rf"\n?{STATUS_MARK} \d+\n", "", stderr)
        if line is None:
            return Ran(-1, stdout, stderr + "\n(the shell ended)", http)
        return Ran(int(line.split()[1]), stdout, stderr, http)

    def read_line(self, timeout: float) -> str | None:
        """The shell's next line on stdout; None when it ended; AssertionError after
        ``timeout`` s."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"a command ran for more than {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def mismatch(command: Command, ran: Ran) -> str | None:
    """What is wrong with what ``command`` did, or None."""
    if ran.status != 0:
        return f"exited with status {ran.status}"
    want = command.expected
    if want is not None and want.status is not None:
        if not ran.http:
            return f"the comment gives HTTP {want.status}, but the command ran no curl"
        if ran.http[-1] != want.status:
            return f"HTTP {ran.http[-1]}, the README says {want.status}"
    elif any(not 100 <= status < 400 for status in ran.http):
        return f"HTTP {ran.http} (0: no answer) without a comment saying so"
    if want is None or not want.answer:
        return None
    try:
        output = shown(want.answer, ran.stdout)
    except ValueError:
        return "the answer is not JSON"
    answer = want.answer if want.answer.startswith(("{", "[")) else " ".join(want.answer.split())
    if not fits(answer, output):
        return f"the answer is not the README's:\n  README: {answer}\n  got:    {output}"
    return None


def run_readme(shell: Shell, steps: list[Command]) -> list[tuple[Command, float]]:
    """Run ``steps`` in ``shell``; how long each took. AssertionError at the first that fails."""
    took = []
    for command in steps:
        start = time.monotonic()
        deadline = start + WAIT_SECONDS
        while True:
            ran = shell.run(command.text)
            wrong = mismatch(command, ran)
            if wrong is None:
                break
            later = command.expected is not None and command.expected.later
            if not later or ran.status != 0 or time.monotonic() > deadline:
                raise AssertionError(
                    f"{command.where()}: {wrong}"
                    + (f" (still, after {WAIT_SECONDS:g} s)" if later else "")
                    + f"\n$ {command.text}\n"
                    + (f"{ARROW} {command.expected.comment}\n" if command.expected else "")
                    + f"stdout: {ran.stdout[-3000:]}\nstderr: {ran.stderr[-3000:]}"
                )
            time.sleep(0.5)
        took.append((command, time.monotonic() - start))
    return took


def shell_env(repo: Path) -> dict[str, str]:
    """A second shell's environment: nothing of the dev stack, the project's tools first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NSL_")
        and k not in STACK_VARIABLES
        and k not in ("API", "VIRTUAL_ENV", "BASH_ENV", "ENV")
    }
    env["PATH"] = f"{repo / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def test_readme_blocks_are_well_formed(repo_root: Path) -> None:
    """Without a stack: the README's blocks cut into commands and their comments read."""
    steps = readme_commands(repo_root / "README.md")
    assert {c.section for c in steps} >= {"Walk-through", "Gas bank walk-through (dev chain)"}
    headings = set(re.findall(r"^## (.+)$", (repo_root / "README.md").read_text(), re.M))
    assert set(SKIPPED) <= headings
    for command in steps:
        want = command.expected
        if want is not None and want.answer.startswith(("{", "[")):
            # The JSON shown, with `…` as a value, is JSON: a typo shows here, not after minutes.
            assert want.answer.count("{") == want.answer.count("}"), command.where()
            assert want.answer.count("[") == want.answer.count("]"), command.where()
    assert fits('{"id": …, "name": "a"}', '{"id": 7, "name": "a"}')
    assert not fits('{"id": …, "name": "a"}', '{"id": 7, "name": "a", "x": 1}')
    assert fits("… 0 mismatched", "2 accounts checked, 0 mismatched")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_runs_as_written(tmp_path: Path, repo_root: Path) -> None:
    steps = readme_commands(repo_root / "README.md")
    folder = tmp_path / "shell"
    folder.mkdir()
    (folder / ".dev").symlink_to(tmp_path / ".dev")
    for name in (".venv", "examples"):
        (folder / name).symlink_to(repo_root / name)
    stack = DevStack(tmp_path, repo_root)
    # The README shows what `make dev` does by default: a starter balance for a new tenant.
    for name in ("NSL_DEV_STARTER_GAS", "NSL_DEV_FAUCET_ADDRESS"):
        stack.env.pop(name, None)
    started = time.monotonic()
    with stack.running() as proc:
        print(f"dev stack ready in {stack.wait_ready(proc):.1f} s")
        env = shell_env(repo_root)
        # Where `nsl login` keeps the API key: the shell's, not the user's.
        env["XDG_CONFIG_HOME"] = str(folder / ".config")
        shell = Shell(folder, env)
        try:
            assert shell.run(SHELL_SETUP).status == 0
            took = run_readme(shell, steps)
        except AssertionError as exc:
            log = stack.log()
            raise AssertionError(f"{exc}\n--- the dev stack's log, last lines:\n{log}") from None
        finally:
            shell.close()
        # What the README made the stack do; its shutdown is test_dev_stack's to check.
        log = (tmp_path / "dev.log").read_text(errors="replace")
    # Leaving the block killed the stack and every process it started, as on every path.
    at = log.find("Traceback")
    assert at < 0, f"a traceback in the dev stack's log:\n{log[max(0, at - 2000) : at + 3000]}"
    slowest = sorted(took, key=lambda item: -item[1])[:5]
    print(
        f"{len(took)} commands in {sum(s for _, s in took):.0f} s, all in "
        f"{time.monotonic() - started:.0f} s; slowest: "
        + ", ".join(f"{c.where()} {s:.1f} s" for c, s in slowest)
    )
