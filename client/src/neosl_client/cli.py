"""``nsl``: the tenant's command line, built on the SDK.

    nsl login --url http://127.0.0.1:8000          # asks for the API key; stored 0600
    nsl functions deploy hello.js --name hello --secret API_TOKEN --timeout 10
    printf %s "$TOKEN" | nsl secrets set API_TOKEN  # the value from standard input
    nsl functions invoke hello --input '{"name": "Neo"}' --wait
    nsl logs 42 --follow
    nsl triggers create cron hello --schedule '*/5 * * * *'

Tables for people, ``--json`` for scripts. Exit codes: 0 done, 1 the API refused (or could
not be reached), 2 usage. The API's URL and key come from ``NSL_API_URL`` and
``NSL_API_KEY``, else from the file ``nsl login`` writes (``NSL_CONFIG``, default
``~/.config/neosl/config.json``).
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from neosl_client import errors
from neosl_client.client import MAX_WAIT, Client

OK, REFUSED, USAGE = 0, 1, 2
_FINISHED = ("succeeded", "failed", "timeout")


class UsageError(Exception):
    """The command cannot run as given (exit code 2)."""


# -- configuration ---------------------------------------------------------------------------


def config_path() -> Path:
    explicit = os.environ.get("NSL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "neosl" / "config.json"


def load_config() -> dict[str, str]:
    path = config_path()
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    url = os.environ.get("NSL_API_URL") or stored.get("url")
    key = os.environ.get("NSL_API_KEY") or stored.get("api_key")
    return {k: v for k, v in (("url", url), ("api_key", key)) if v}


def save_config(url: str, api_key: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 before the key is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "api_key": api_key}, f)
    path.chmod(0o600)
    return path


# -- output ----------------------------------------------------------------------------------


class Out:
    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def one(self, item: Any, fields: Sequence[str] | None = None) -> None:
        if self.as_json or not isinstance(item, dict):
            self.stdout.write(json.dumps(item, indent=2, default=str) + "\n")
            return
        shown = [f for f in fields or item if f in item]
        width = max((len(f) for f in shown), default=0)
        for name in shown:
            self.stdout.write(f"{name:<{width}}  {_cell(item[name], 200)}\n")

    def many(self, items: Iterable[Any], columns: Sequence[str]) -> None:
        rows = list(items)
        if self.as_json:
            self.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        if not rows:
            self.stderr.write("(none)\n")
            return
        cells = [[_cell(row.get(c)) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        self.stdout.write(
            "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
            + "\n"
        )
        for row in cells:
            self.stdout.write(
                "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n"
            )

    def log_line(self, line: Mapping[str, Any]) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(line, default=str) + "\n")
        else:
            level = str(line.get("level", "")).upper()
            self.stdout.write(f"{line.get('timestamp', '')} {level:5} {line.get('message', '')}\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")

    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """A spinner on standard error while a call waits (only on a terminal)."""
        if not self.stderr.isatty():
            yield
            return
        done = threading.Event()

        def spin() -> None:
            for frame in itertools.cycle("|/-\\"):
                if done.wait(0.1):
                    break
                self.stderr.write(f"\r{frame} {what}")
                self.stderr.flush()
            self.stderr.write("\r" + " " * (len(what) + 2) + "\r")

        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def _cell(value: Any, limit: int = 48) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- helpers ---------------------------------------------------------------------------------


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"{what}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None


def _function_id(nsl: Client, ref: str) -> int:
    """A function named or numbered ``ref``."""
    if ref.isdigit():
        return int(ref)
    found = nsl.functions.find(ref)
    if found is None:
        raise UsageError(f"no function named {ref!r}")
    return found["id"]


def _read_secret_value(stdin: TextIO) -> str:
    if stdin.isatty():
        return getpass.getpass("value: ")
    value = stdin.read()
    return value[:-1] if value.endswith("\n") else value


# -- commands --------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace, Client, Out], int]


def cmd_login(args: argparse.Namespace, stdin: TextIO, out: Out) -> int:
    key = args.api_key or os.environ.get("NSL_API_KEY")
    if not key:
        key = getpass.getpass("API key: ") if stdin.isatty() else stdin.readline().strip()
    if not key:
        raise UsageError("no API key given")
    with Client(args.url, key) as nsl:
        me = nsl.auth.me()
    path = save_config(args.url, key)
    out.note(f"logged in as {me['username']} at {args.url} (saved in {path}, mode 0600)")
    return OK


def cmd_whoami(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.auth.me())
    return OK


FUNCTION_COLUMNS = ("id", "name", "version", "status", "timeout", "memory", "execution_count")


def cmd_functions_deploy(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    try:
        source = Path(args.file).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc}") from None
    name = args.name or Path(args.file).stem
    options: dict[str, Any] = {}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.memory is not None:
        options["memory"] = args.memory
    if args.secret:
        options["secrets"] = args.secret
    if args.description is not None:
        options["description"] = args.description
    fn = nsl.functions.deploy(name, source, **options)
    out.one(fn, FUNCTION_COLUMNS)
    return OK


def cmd_functions_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.many(nsl.functions.list(), FUNCTION_COLUMNS)
    return OK


def cmd_functions_get(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.functions.get(_function_id(nsl, args.function)))
    return OK


def cmd_functions_delete(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    nsl.functions.delete(_function_id(nsl, args.function))
    out.note("deleted")
    return OK


def cmd_functions_invoke(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    fn = _function_id(nsl, args.function)
    payload = _json_arg(args.input, "--input")
    if args.wait is None:
        out.one(nsl.functions.invoke(fn, payload))
        return OK
    deadline = time.monotonic() + args.wait
    with out.waiting("running"):
        answer: Any = nsl.functions.invoke(fn, payload, wait=min(args.wait, MAX_WAIT))
        execution_id = answer.get("execution_id", answer.get("id"))
        while answer.get("status") not in _FINISHED and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = nsl.executions.get(execution_id)
    out.one(answer, EXECUTION_FIELDS)
    return OK if answer.get("status") == "succeeded" else REFUSED


EXECUTION_COLUMNS = ("id", "function_id", "version", "status", "duration", "start_time", "error")
EXECUTION_FIELDS = (
    "id",
    "function_id",
    "version",
    "status",
    "result",
    "error",
    "duration",
    "start_time",
    "end_time",
    "charge_status",
    "charge_amount",
    "execution_id",
)


def cmd_executions_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    fn = _function_id(nsl, args.function) if args.function else None
    items = nsl.executions.list(function_id=fn, status=args.status)
    out.many(itertools.islice(items, args.limit), EXECUTION_COLUMNS)
    return OK


def cmd_executions_get(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.executions.get(args.execution))
    return OK


def cmd_logs(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    shown = 0
    while True:
        # Read whether it has ended before its lines: none written before the end is missed.
        ended = args.follow and nsl.executions.get(args.execution)["status"] in _FINISHED
        lines = list(nsl.executions.logs(args.execution))
        for line in lines[shown:]:
            out.log_line(line)
        shown = len(lines)
        if not args.follow or ended:
            return OK
        time.sleep(args.interval)


def cmd_secrets_set(args: argparse.Namespace, nsl: Client, out: Out, stdin: TextIO) -> int:
    value = _read_secret_value(stdin)
    if not value:
        raise UsageError("empty secret value (give it on standard input)")
    out.one(nsl.secrets.set(args.name, value))
    return OK


def cmd_secrets_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.many(nsl.secrets.list(), ("name", "created_at", "updated_at"))
    return OK


def cmd_secrets_delete(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    nsl.secrets.delete(args.name)
    out.note("deleted")
    return OK


TRIGGER_COLUMNS = ("id", "name", "trigger_type", "function_id", "status", "last_event")


def cmd_triggers_create(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    fn = _function_id(nsl, args.function)
    config: dict[str, Any] = dict(_json_arg(args.config, "--config") or {})
    if args.type == "cron":
        if not args.schedule and "schedule" not in config:
            raise UsageError("a cron trigger needs --schedule")
        if args.schedule:
            config["schedule"] = args.schedule
        if args.timezone:
            config["timezone"] = args.timezone
    name = args.name or f"{args.function}-{args.type}"
    created = nsl.triggers.create(name, fn, args.type, config)
    out.one(created)
    if args.type == "webhook" and not out.as_json:
        out.note("keep the webhook secret: it is shown only now")
    return OK


def cmd_triggers_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.many(nsl.triggers.list(type=args.type), TRIGGER_COLUMNS)
    return OK


def _trigger_action(action: str) -> Handler:
    def run(args: argparse.Namespace, nsl: Client, out: Out) -> int:
        result = getattr(nsl.triggers, action)(args.trigger)
        if result is None:
            out.note("deleted")
        else:
            out.one(result, None if action == "rotate_secret" else TRIGGER_COLUMNS)
        return OK

    return run


def cmd_triggers_events(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    items = itertools.islice(nsl.triggers.events(args.trigger), args.limit)
    out.many(items, ("id", "status", "execution_id", "reason", "created_at"))
    return OK


FEED_COLUMNS = ("id", "asset_pair", "frequency", "status", "aggregation", "min_sources")


def cmd_feeds_create(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    options: dict[str, Any] = {}
    for name in ("aggregation", "heartbeat", "min_sources", "deviation"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.usdt_as_usd:
        options["usdt_as_usd"] = True
    feed = nsl.feeds.create(args.pair, args.source, args.frequency, **options)
    out.one(feed, FEED_COLUMNS)
    return OK


def cmd_feeds_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.many(nsl.feeds.list(asset_pair=args.pair), FEED_COLUMNS)
    return OK


def cmd_feeds_latest(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.feeds.latest(args.feed))
    return OK


def cmd_feeds_report(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.feeds.report(args.feed))
    return OK


def cmd_feeds_sources(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    if args.pair:
        listed = nsl.feeds.sources(args.pair, usdt_as_usd=args.usdt_as_usd)
        out.many(listed, ("name", "market", "symbol"))
    else:
        out.many(nsl.feeds.sources(), ("name", "title", "markets", "listed_at"))
    return OK


ACCOUNT_COLUMNS = ("id", "address", "balance", "is_default", "verified")


def cmd_gas_prove(args: argparse.Namespace, nsl: Client, out: Out, stdin: TextIO) -> int:
    from neosl_client.wallet import WalletError, WalletKey

    try:
        if args.wallet:
            password = os.environ.get("NSL_WALLET_PASSWORD") or getpass.getpass("wallet password: ")
            key = WalletKey.from_nep6(args.wallet, password, args.address)
        else:
            wif = args.wif
            if wif in (None, "-"):
                wif = stdin.readline().strip() if not stdin.isatty() else getpass.getpass("WIF: ")
            key = WalletKey.from_wif(wif)
    except WalletError as exc:
        raise UsageError(str(exc)) from None
    if args.address and key.address != args.address:
        raise UsageError(f"the key is the key of {key.address}, not of {args.address}")
    out.one(nsl.gas.prove(key), ACCOUNT_COLUMNS)
    return OK


def cmd_gas_accounts(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.many(nsl.gas.accounts(), ACCOUNT_COLUMNS)
    return OK


def cmd_gas_account(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.gas.account(args.account), ACCOUNT_COLUMNS)
    return OK


def cmd_gas_deposit_address(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.gas.deposit_address())
    return OK


def cmd_gas_withdraw(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.gas.withdraw(args.account, args.amount, idempotency_key=args.idempotency_key))
    return OK


def cmd_gas_transactions(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    items = nsl.gas.transactions(account_id=args.account, type=args.type)
    columns = ("id", "type", "amount", "status", "tx_hash", "created_at")
    out.many(itertools.islice(items, args.limit), columns)
    return OK


def cmd_actions_list(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    items = nsl.neo.actions(status=args.status)
    columns = ("id", "contract", "method", "status", "fee_charged", "tx_hash")
    out.many(itertools.islice(items, args.limit), columns)
    return OK


def cmd_signer(args: argparse.Namespace, nsl: Client, out: Out) -> int:
    out.one(nsl.neo.signer())
    return OK


# -- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsl",
        description="The Neo N3 Service Layer from your terminal: functions, secrets, "
        "triggers, price feeds, the gas bank.",
        epilog="Exit codes: 0 done, 1 the API refused or could not be reached, 2 usage.",
    )
    parser.add_argument("--json", action="store_true", help="JSON output, for scripts")
    parser.add_argument("--url", help="the API's URL (default: NSL_API_URL, then nsl login's)")
    parser.add_argument(
        "--call-timeout", type=float, default=30.0, help="seconds per call to the API (30)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = sub.add_parser("login", help="store the API's URL and your API key (0600)")
    login.add_argument(
        "--url", required=True, dest="login_url", metavar="URL", help="the API's URL"
    )
    login.add_argument("--api-key", help="the key (default: asked, or standard input)")
    login.set_defaults(login=True)

    sub.add_parser("whoami", help="who the stored key is").set_defaults(handler=cmd_whoami)

    functions = sub.add_parser("functions", help="deploy, list, invoke functions")
    fsub = functions.add_subparsers(dest="action", required=True, metavar="ACTION")
    deploy = fsub.add_parser("deploy", help="create, or update by name (a new version)")
    deploy.add_argument("file", help="the JavaScript file (defines main(input, ctx))")
    deploy.add_argument("--name", help="the function's name (default: the file's name)")
    deploy.add_argument("--secret", action="append", help="a secret it may read (repeat)")
    deploy.add_argument("--timeout", type=int, help="seconds, 1-300")
    deploy.add_argument("--memory", type=int, help="MB, 16-512")
    deploy.add_argument("--description")
    deploy.set_defaults(handler=cmd_functions_deploy)
    fsub.add_parser("list", help="your functions").set_defaults(handler=cmd_functions_list)
    get = fsub.add_parser("get", help="one function, with its code")
    get.add_argument("function", help="name or id")
    get.set_defaults(handler=cmd_functions_get)
    delete = fsub.add_parser("delete", help="delete a function")
    delete.add_argument("function", help="name or id")
    delete.set_defaults(handler=cmd_functions_delete)
    invoke = fsub.add_parser("invoke", help="run a function")
    invoke.add_argument("function", help="name or id")
    invoke.add_argument("--input", help="JSON (or @file) passed as main's input")
    invoke.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=60.0,
        help="wait for the result, up to this many seconds (60); exit 1 unless it succeeded",
    )
    invoke.set_defaults(handler=cmd_functions_invoke)

    executions = sub.add_parser("executions", help="list and show executions")
    esub = executions.add_subparsers(dest="action", required=True, metavar="ACTION")
    elist = esub.add_parser("list", help="newest first")
    elist.add_argument("--function", help="name or id")
    elist.add_argument("--status", choices=("queued", "running", *_FINISHED))
    elist.add_argument("--limit", type=int, default=20)
    elist.set_defaults(handler=cmd_executions_list)
    eget = esub.add_parser("get", help="one execution, with its result")
    eget.add_argument("execution", type=int)
    eget.set_defaults(handler=cmd_executions_get)

    logs = sub.add_parser("logs", help="an execution's console lines")
    logs.add_argument("execution", type=int)
    logs.add_argument("--follow", "-f", action="store_true", help="until the execution ends")
    logs.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    logs.set_defaults(handler=cmd_logs)

    secrets = sub.add_parser("secrets", help="your functions' secrets")
    ssub = secrets.add_subparsers(dest="action", required=True, metavar="ACTION")
    sset = ssub.add_parser("set", help="create or replace; the value from standard input")
    sset.add_argument("name")
    sset.set_defaults(handler=cmd_secrets_set, needs_stdin=True)
    ssub.add_parser("list", help="names only").set_defaults(handler=cmd_secrets_list)
    sdel = ssub.add_parser("delete")
    sdel.add_argument("name")
    sdel.set_defaults(handler=cmd_secrets_delete)

    triggers = sub.add_parser("triggers", help="run functions on a schedule, a webhook, ...")
    tsub = triggers.add_subparsers(dest="action", required=True, metavar="ACTION")
    tcreate = tsub.add_parser("create", help="e.g. create cron hello --schedule '*/5 * * * *'")
    tcreate.add_argument("type", choices=("cron", "webhook", "price", "blockchain"))
    tcreate.add_argument("function", help="name or id")
    tcreate.add_argument("--name")
    tcreate.add_argument("--schedule", help="cron: 5 fields (6 with seconds)")
    tcreate.add_argument("--timezone", help="cron: an IANA zone (UTC)")
    tcreate.add_argument("--config", help="the trigger's configuration, JSON (or @file)")
    tcreate.set_defaults(handler=cmd_triggers_create)
    tlist = tsub.add_parser("list")
    tlist.add_argument("--type", choices=("cron", "webhook", "price", "blockchain"))
    tlist.set_defaults(handler=cmd_triggers_list)
    for action, text in (
        ("get", "one trigger"),
        ("pause", "stop firing"),
        ("resume", "fire again"),
        ("delete", "delete"),
        ("rotate-secret", "a new webhook secret"),
    ):
        p = tsub.add_parser(action, help=text)
        p.add_argument("trigger", type=int)
        p.set_defaults(handler=_trigger_action(action.replace("-", "_")))
    tevents = tsub.add_parser("events", help="what a trigger did, newest first")
    tevents.add_argument("trigger", type=int)
    tevents.add_argument("--limit", type=int, default=20)
    tevents.set_defaults(handler=cmd_triggers_events)

    feeds = sub.add_parser("feeds", help="price feeds")
    psub = feeds.add_subparsers(dest="action", required=True, metavar="ACTION")
    pcreate = psub.add_parser("create", help="e.g. create NEO/USD --source binance --source okx")
    pcreate.add_argument("pair", help="BASE/QUOTE")
    pcreate.add_argument("--source", action="append", required=True, help="a source (repeat)")
    pcreate.add_argument("--frequency", type=int, default=60, help="seconds between rounds")
    pcreate.add_argument("--aggregation", choices=("median", "mean", "weighted"))
    pcreate.add_argument("--min-sources", type=int)
    pcreate.add_argument("--heartbeat", type=int)
    pcreate.add_argument("--deviation", help="percent that triggers a publication")
    pcreate.add_argument(
        "--usdt-as-usd",
        action="store_true",
        help="a USD pair may read a source's USDT market where it has no USD one",
    )
    pcreate.set_defaults(handler=cmd_feeds_create)
    plist = psub.add_parser("list")
    plist.add_argument("--pair")
    plist.set_defaults(handler=cmd_feeds_list)
    platest = psub.add_parser("latest", help="the latest price and round")
    platest.add_argument("feed", type=int)
    platest.set_defaults(handler=cmd_feeds_latest)
    preport = psub.add_parser("report", help="the latest round, signed for contracts")
    preport.add_argument("feed", type=int)
    preport.set_defaults(handler=cmd_feeds_report)
    psources = psub.add_parser("sources", help="the sources a feed may use")
    psources.add_argument("--pair", help="only those that price BASE/QUOTE, and how")
    psources.add_argument(
        "--usdt-as-usd", action="store_true", help="with --pair USD: count USDT markets"
    )
    psources.set_defaults(handler=cmd_feeds_sources)

    gas = sub.add_parser("gas", help="the gas bank: accounts, deposits, withdrawals")
    gsub = gas.add_subparsers(dest="action", required=True, metavar="ACTION")
    prove = gsub.add_parser("prove", help="register an address you own, signed with its key")
    prove.add_argument("address", nargs="?", help="checked against the key")
    keys = prove.add_mutually_exclusive_group(required=True)
    keys.add_argument("--wif", nargs="?", const="-", help="the WIF, or - for standard input")
    keys.add_argument(
        "--wallet", help="a NEP-6 wallet file (password: NSL_WALLET_PASSWORD or asked)"
    )
    prove.set_defaults(handler=cmd_gas_prove, needs_stdin=True)
    gsub.add_parser("accounts", help="your gas accounts and balances").set_defaults(
        handler=cmd_gas_accounts
    )
    gaccount = gsub.add_parser("account", help="one gas account and its balance")
    gaccount.add_argument("account", type=int)
    gaccount.set_defaults(handler=cmd_gas_account)
    gsub.add_parser("deposit-address", help="where to send GAS").set_defaults(
        handler=cmd_gas_deposit_address
    )
    withdraw = gsub.add_parser("withdraw", help="GAS back to an account's address")
    withdraw.add_argument("account", type=int)
    withdraw.add_argument("amount", help="GAS, e.g. 1.5")
    withdraw.add_argument("--idempotency-key", help="make your own retries safe too")
    withdraw.set_defaults(handler=cmd_gas_withdraw)
    gtx = gsub.add_parser("transactions", help="deposits, charges, withdrawals")
    gtx.add_argument("--account", type=int)
    gtx.add_argument("--type")
    gtx.add_argument("--limit", type=int, default=20)
    gtx.set_defaults(handler=cmd_gas_transactions)

    actions = sub.add_parser("actions", help="on-chain actions relayed for you")
    asub = actions.add_subparsers(dest="action", required=True, metavar="ACTION")
    alist = asub.add_parser("list")
    alist.add_argument("--status", choices=("queued", "pending", "confirmed", "failed"))
    alist.add_argument("--limit", type=int, default=20)
    alist.set_defaults(handler=cmd_actions_list)
    asub.add_parser("signer", help="the account your actions are witnessed by").set_defaults(
        handler=cmd_signer
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    out = Out(args.json, stdout, stderr)
    try:
        if getattr(args, "login", False):
            args.url = args.login_url
            return cmd_login(args, stdin, out)
        config = load_config()
        url = args.url or config.get("url")
        if not url:
            raise UsageError("no API URL: run `nsl login --url URL`, or set NSL_API_URL")
        if not config.get("api_key"):
            raise UsageError("no API key: run `nsl login`, or set NSL_API_KEY")
        with Client(url, config["api_key"], timeout=args.call_timeout) as nsl:
            if getattr(args, "needs_stdin", False):
                return int(args.handler(args, nsl, out, stdin))
            return int(args.handler(args, nsl, out))
    except UsageError as exc:
        stderr.write(f"nsl: {exc}\n")
        return USAGE
    except errors.ApiError as exc:
        stderr.write(f"nsl: {exc.status} {exc.code}: {exc.message}\n")
        if exc.details:
            stderr.write(f"     {json.dumps(exc.details)}\n")
        return REFUSED
    except errors.TransportError as exc:
        stderr.write(f"nsl: {exc}\n")
        return REFUSED
    except KeyboardInterrupt:
        stderr.write("\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
