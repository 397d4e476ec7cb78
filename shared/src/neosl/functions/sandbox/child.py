"""A sandbox process: ``python -m neosl.functions.sandbox.child [--user UID:GID]``.

Started by ``neosl.functions.sandbox.pool`` (``pool.child_spec``: a clean environment, in
``/``) and spoken to over stdin/stdout (``neosl.functions.sandbox.protocol``); never imported
by the pool. Before it reads any tenant code the process contains itself
(``neosl.functions.sandbox.containment``): its network namespace and seccomp filter while it
has a single thread, then the JavaScript engine is imported (``engine``, whose ``quickjs``
starts a thread), then the switch to the sandbox user and the resource limits. It then
serves runs (``engine.serve``); its ``ready`` message says which steps held.

``--probe [--connect HOST:PORT ...] [--skip STEP ...]``: take the same steps (but those
skipped), then write what the system still allows (``containment.probe``: one JSON object)
instead of serving; it never serves. For tests and operators.
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys

from neosl.functions.sandbox import containment


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host, int(port)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m neosl.functions.sandbox.child")
    parser.add_argument(
        "--user",
        type=containment.resolve_user,
        default=containment.DEFAULT_USER,
        help="the user to run as when started as root (name, UID or UID:GID)",
    )
    parser.add_argument("--probe", action="store_true", help="print what the system allows")
    parser.add_argument(
        "--connect", type=_address, action="append", default=[], help="HOST:PORT to probe"
    )
    parser.add_argument(
        "--skip",
        choices=containment.STEPS,
        action="append",
        default=[],
        help="leave this step out (only with --probe: to show what the others hold alone)",
    )
    options = parser.parse_args(argv)
    if options.skip and not options.probe:
        parser.error("--skip only goes with --probe")
    return options


def main() -> int:
    options = _arguments(sys.argv[1:])
    # The pool stops its children; a ^C meant for the parent's terminal must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    report = containment.before_threads(options.skip)
    # Imported only now: it imports quickjs, which starts a thread at once, and a network
    # namespace or a seccomp filter binds only the threads created after it.
    from neosl.functions.sandbox import engine

    report.update(containment.after_imports(options.user, options.skip))
    report = {step: report[step] for step in containment.STEPS}
    channel = engine.Channel()
    if options.probe:
        channel.send({"containment": report, **containment.probe(options.connect)})
        return 0
    return engine.serve(channel, report)


if __name__ == "__main__":
    sys.exit(main())
