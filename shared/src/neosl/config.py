"""All configuration, read from the environment in one place.

``load_settings()`` validates every variable and raises ``ConfigError`` naming the one that
is wrong, so a process fails at start rather than on its first request. There are no
default secrets: the dev stack (``neosl-dev``) generates its own and passes them in.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

# The public market-data APIs the price feeds can read, and where each one answers.
PRICE_SOURCE_URLS = {
    "binance": "https://api.binance.com",
    "coinbase": "https://api.exchange.coinbase.com",
    "kraken": "https://api.kraken.com",
    "okx": "https://www.okx.com",
    "bybit": "https://api.bybit.com",
    "kucoin": "https://api.kucoin.com",
    "gate": "https://api.gateio.ws",
    "bitfinex": "https://api-pub.bitfinex.com",
    "htx": "https://api.huobi.pro",
    "coingecko": "https://api.coingecko.com",
}


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class MasterKey:
    """A master key for tenant secrets, with the id stored next to what it wraps."""

    id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class NamedKey:
    """Key material read from the environment (``ID:KEY``), never printed; what it is for
    is the business of the module that uses it (``neosl.onchain.relaybox`` for the relay's)."""

    id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    neo_rpc_urls: tuple[str, ...]
    # Signs login tokens (HMAC-SHA256).
    # Signs login tokens: the API's alone (``require_secret_key``); None where not set.
    secret_key: bytes | None = field(default=None, repr=False)
    # Master keys that wrap tenant secrets' data keys (AES-256-GCM): the first one wraps new
    # data keys, every one unwraps (so a key can rotate; see neosl.functions.secretbox). Only the
    # processes that read tenant secrets hold them (``require_secrets_keys``).
    secrets_keys: tuple[MasterKey, ...] = field(default=(), repr=False)
    token_ttl_seconds: int = 3600
    login_limit_per_account: int = 10
    login_limit_per_address: int = 30
    login_window_seconds: int = 300
    # Registrations per client address and window (each one costs an argon2 hash).
    register_limit_per_address: int = 10
    register_window_seconds: int = 3600
    # Named in the messages tenants sign to prove they own an address.
    service_name: str = "Neo N3 Service Layer"
    address_challenge_ttl_seconds: int = 600
    max_body_bytes: int = 1_048_576
    proxy_hops: int = 0
    db_pool_size: int = 5
    # How long a worker keeps a finished unit of work (an execution's outcome) and retries
    # writing it while the database is unavailable, seconds.
    db_outage_seconds: float = 30.0
    db_dir: Path | None = None
    log_level: str = "INFO"
    # "json": one JSON object per line with the ids of the work at hand; "text": for people.
    log_format: str = "json"
    # A worker or loop process serves /metrics and /healthz on this port (0: it does not).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # Celery result backend; the broker URL is redis_url.
    result_backend: str | None = None
    # Workers and producers send task events (sent, received, started, succeeded...), which
    # Flower's Tasks view and `celery events` show.
    celery_events: bool = True
    # The hot wallet: deposits arrive at its address, withdrawals are signed with its key.
    # Only the gasbank needs the key; everyone else needs only the address.
    hot_wallet_wif: str | None = field(default=None, repr=False)
    deposit_address: str | None = None
    # The gas bank is on unless NSL_GAS_BANK=off; then NSL_DEPOSIT_ADDRESS is required.
    gas_bank_enabled: bool = True
    withdraw_min: Decimal = Decimal("0.1")
    withdraw_max: Decimal = Decimal(10_000)
    withdraw_daily: Decimal = Decimal(50_000)
    withdraw_valid_blocks: int = 100
    # A withdrawal is refunded as never included only when one node, itself at least this
    # many blocks past its valid_until_block, does not know the transaction.
    settle_margin_blocks: int = 2
    follower_batch_blocks: int = 100
    follower_interval: float = 1.0
    # Functions: the sandbox, outbound requests, billing and retention.
    sandbox_processes: int = 64
    # Sandbox processes an executor starts as soon as it is up (at most sandbox_processes).
    sandbox_warm: int = 64
    # The user sandbox processes switch to when the executor runs as root (name, UID or
    # UID:GID; never root).
    sandbox_user: str = "nobody"
    fetch_allow: tuple[str, ...] = ()
    fetch_timeout_seconds: float = 10.0
    function_base_fee: Decimal = Decimal(0)
    function_fee_per_100ms: Decimal = Decimal(0)
    execution_retention_days: int = 30
    execution_requeue_seconds: int = 60
    execution_reap_grace_seconds: int = 30
    # On-chain actions: the relay's key (gasbank only) and its public half (whoever
    # creates tenants' signers), limits per execution, fees, a transaction's lifetime.
    relay_key: NamedKey | None = field(default=None, repr=False)
    relay_public_key: NamedKey | None = None
    neo_calls_per_execution: int = 10
    neo_actions_per_execution: int = 10
    action_service_fee: Decimal = Decimal(0)
    action_max_fee: Decimal = Decimal(10)
    action_valid_blocks: int = 100
    action_requeue_seconds: int = 30
    relay_batch: int = 50
    # Triggers: the shortest cron interval a tenant may schedule, the clock's batch and
    # polling, webhook deliveries per trigger and minute, the periodic price check.
    cron_min_interval: int = 10
    cron_batch: int = 500
    cron_poll_seconds: float = 0.5
    webhook_rate_limit: int = 60
    # Requests of one tenant that may wait (?wait) for their execution at once; beyond
    # them an invoke answers 202 at once, so one tenant cannot hold every API thread.
    waiting_per_tenant: int = 4
    # Executions of one tenant dispatched to the executor (sent or running) at once; the
    # rest wait in PostgreSQL for a slot of their tenant, so one backlog delays no one else.
    executions_per_tenant: int = 8
    triggers_per_tenant: int = 1000
    price_check_seconds: float = 5.0
    # Price feeds: each market-data source's base URL (NSL_PRICE_SOURCE_<NAME>_URL), one
    # source's time limit in a round, the shortest round period a feed may have.
    price_source_urls: tuple[tuple[str, str], ...] = tuple(PRICE_SOURCE_URLS.items())
    price_source_timeout_seconds: float = 3.0
    # How often the pricefeed worker fetches each exchange source's market list again.
    price_listing_refresh_seconds: int = 3600
    pricefeed_min_frequency: int = 10
    # The PriceFeed contract rounds are published to ("0x…"); the dev stack deploys its own.
    pricefeed_contract: str | None = None
    # Charged per publication on top of its chain fees, GAS.
    pricefeed_service_fee: Decimal = Decimal(0)
    # Charged to a feed's owner per round, before any source is asked: a fee per round plus
    # one per source the round asks, GAS.
    pricefeed_round_fee: Decimal = Decimal(0)
    pricefeed_source_fee: Decimal = Decimal(0)
    # Signs each priced round's report (secp256r1; the pricefeed worker's alone), and what a
    # tenant's read of a signed report costs, GAS.
    report_key: NamedKey | None = field(default=None, repr=False)
    pricefeed_report_fee: Decimal = Decimal(0)
    # Price feeds one tenant may have (public ones count for their operator).
    feeds_per_tenant: int = 50
    # On-chain actions one tenant may have queued or pending at once; past it, the API
    # answers 409 and an execution's neo.invoke is recorded failed.
    actions_in_flight_per_tenant: int = 100
    # The dev stack only (`neosl-dev up` sets both): each new tenant's starter balance, one of
    # the deposits the dev stack made from its faucet address to the hot wallet, credited to
    # a default account made for the tenant at registration; 0: none.
    dev_starter_gas: Decimal = Decimal(0)
    dev_faucet_address: str | None = None

    @property
    def neo_rpc_url(self) -> str:
        return self.neo_rpc_urls[0]

    def price_source_url(self, name: str) -> str:
        """The base URL of the market-data source ``name``.

        Raises:
            KeyError: no such source.
        """
        return dict(self.price_source_urls)[name]

    def require_secret_key(self) -> bytes:
        """The login-token key (the API's). Raises ConfigError when NSL_SECRET_KEY is unset."""
        if self.secret_key is None:
            raise ConfigError("NSL_SECRET_KEY is not set; the API signs login tokens with it")
        return self.secret_key

    def require_secrets_keys(self) -> tuple[MasterKey, ...]:
        """The secrets' master keys, for a process that reads or writes tenant secrets (the
        API, the executor, the price rounds). Raises ConfigError when NSL_SECRETS_KEY is
        unset."""
        if not self.secrets_keys:
            raise ConfigError(
                "NSL_SECRETS_KEY is not set; this process reads tenants' secrets with it"
            )
        return self.secrets_keys

    def describe(self) -> dict[str, str]:
        """Every setting as text, with keys and URL passwords hidden (safe to log)."""
        out: dict[str, str] = {}
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if not f.repr:  # the secrets are the fields kept out of repr()
                out[name] = "<hidden>" if value is not None else "None"
            elif isinstance(value, tuple):
                out[name] = ", ".join(
                    f"{v[0]}={_hide_password(v[1])}" if isinstance(v, tuple) else _hide_password(v)
                    for v in value
                )
            elif isinstance(value, str) and "://" in value:
                out[name] = _hide_password(value)
            else:
                out[name] = str(value)
        return out


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    value = _require(env, name)
    return _check_url(name, value, schemes)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        got = parts.scheme or "no scheme"
        raise ConfigError(
            f"{name} must be a URL starting with one of {', '.join(schemes)}: got {got}"
        )
    if not (parts.netloc or parts.path):
        raise ConfigError(f"{name} has no host")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number: got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}: got {value}")
    return value


def _given(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def _key(env: Mapping[str, str], name: str, min_bytes: int, exact: bool = False) -> bytes:
    raw = _require(env, name)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be base64 (url-safe alphabet)") from None
    if exact and len(key) != min_bytes:
        raise ConfigError(f"{name} must decode to exactly {min_bytes} bytes: got {len(key)}")
    if len(key) < min_bytes:
        raise ConfigError(f"{name} must decode to at least {min_bytes} bytes: got {len(key)}")
    return key


def _gas(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name, "").strip() or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a GAS amount like 1.5: got {raw!r}") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("1E-8")):
        raise ConfigError(
            f"{name} must be a positive GAS amount with at most 8 decimals: got {raw!r}"
        )
    return value


_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")


def _master_keys(env: Mapping[str, str], name: str) -> tuple[MasterKey, ...]:
    """``ID:KEY[,ID:KEY…]`` (the first one encrypts), or one bare KEY (id ``default``)."""
    raw = _require(env, name)
    keys: list[MasterKey] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep:
            key_id, encoded = "default", item
        if not _KEY_ID.match(key_id):
            raise ConfigError(f"{name}: key id {key_id!r} must be 1-50 of A-Z a-z 0-9 _ . -")
        if any(k.id == key_id for k in keys):
            raise ConfigError(f"{name}: key id {key_id!r} appears twice")
        keys.append(MasterKey(key_id, _key({name: encoded}, name, 32, exact=True)))
    if not keys:
        raise ConfigError(f"{name} has no key")
    return tuple(keys)


def _one_key(env: Mapping[str, str], name: str) -> tuple[str, bytes] | None:
    """``ID:KEY`` or a bare KEY (id ``default``): a 32-byte url-safe base64 key; None if unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    key_id, sep, encoded = raw.partition(":")
    if not sep:
        key_id, encoded = "default", raw
    if not _KEY_ID.match(key_id):
        raise ConfigError(f"{name}: key id {key_id!r} must be 1-50 of A-Z a-z 0-9 _ . -")
    return key_id, _key({name: encoded}, name, 32, exact=True)


def _named_key(env: Mapping[str, str], name: str) -> NamedKey | None:
    raw = _one_key(env, name)
    return NamedKey(*raw) if raw else None


def _fetch_allow(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Hosts or networks (CIDR) that functions' fetch may reach despite the SSRF guard."""
    items = tuple(i.strip().lower() for i in env.get(name, "").split(",") if i.strip())
    for item in items:
        if "/" in item:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(f"{name}: {item!r} is not a network (CIDR)") from None
        elif not re.fullmatch(r"[a-z0-9.:\[\]-]{1,253}", item):
            raise ConfigError(f"{name}: {item!r} is not a host name or address")
    return items


def _fee(env: Mapping[str, str], name: str) -> Decimal:
    raw = env.get(name, "").strip() or "0"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a GAS amount like 0.001: got {raw!r}") from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("1E-8")):
        raise ConfigError(f"{name} must be zero or a positive GAS amount with at most 8 decimals")
    if value > 1000:
        raise ConfigError(f"{name} must be at most 1000 GAS")
    return value


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be on or off: got {raw!r}")


def _service_name(env: Mapping[str, str]) -> str:
    raw = env.get("NSL_SERVICE_NAME", "").strip() or "Neo N3 Service Layer"
    # ASCII: wallets disagree on how to encode other text in a signed message.
    if len(raw) > 100 or not raw.isprintable() or not raw.isascii():
        raise ConfigError("NSL_SERVICE_NAME must be 1-100 printable ASCII characters")
    return raw


def _price_source_urls(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Each source's base URL: NSL_PRICE_SOURCE_<NAME>_URL, else its public address."""
    urls = []
    for name, default in PRICE_SOURCE_URLS.items():
        variable = f"NSL_PRICE_SOURCE_{name.upper()}_URL"
        value = env.get(variable, "").strip()
        if value:
            value = _check_url(variable, value, ("http", "https")).rstrip("/")
        urls.append((name, value or default))
    return tuple(urls)


def _contract_hash(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip().lower()
    if not value:
        return None
    if not re.fullmatch(r"0x[0-9a-f]{40}", value):
        raise ConfigError(f"{name} must be a contract hash: 0x followed by 40 hex digits")
    return value


def _normalise_db_url(value: str) -> str:
    # Operators paste plain libpq URLs; SQLAlchemy needs the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from ``env`` (default: the process environment).

    Raises:
        ConfigError: a variable is missing or invalid; the message names it.
    """
    env = os.environ if env is None else env
    starter = _fee(env, "NSL_DEV_STARTER_GAS")
    faucet = _text(env, "NSL_DEV_FAUCET_ADDRESS")
    if faucet is not None and not re.fullmatch(r"N[1-9A-HJ-NP-Za-km-z]{33}", faucet):
        raise ConfigError(f"NSL_DEV_FAUCET_ADDRESS is not a Neo N3 address: {faucet!r}")
    if starter > 0 and faucet is None:
        raise ConfigError(
            "NSL_DEV_STARTER_GAS needs NSL_DEV_FAUCET_ADDRESS: the dev stack sets both "
            "(a starter balance is one of its faucet's deposits)"
        )
    database_url = _normalise_db_url(
        _url(env, "DATABASE_URL", ("postgres", "postgresql", "postgresql+psycopg"))
    )
    redis_schemes = ("redis", "rediss", "unix", "redis+socket")
    redis_url = _url(env, "REDIS_URL", redis_schemes)
    rpc_raw = env.get("NEO_RPC_URLS", "").strip() or _require(env, "NEO_RPC_URL")
    rpc_urls = tuple(
        _check_url("NEO_RPC_URLS", u.strip(), ("http", "https"))
        for u in rpc_raw.split(",")
        if u.strip()
    )
    if not rpc_urls:
        raise ConfigError("NEO_RPC_URLS has no URL")
    log_level = env.get("NSL_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"NSL_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL: got {log_level!r}"
        )
    log_format = env.get("NSL_LOG_FORMAT", "json").strip().lower() or "json"
    if log_format not in {"json", "text"}:
        raise ConfigError(f"NSL_LOG_FORMAT must be json or text: got {log_format!r}")
    db_dir_raw = env.get("NSL_DB_DIR", "").strip()
    result_backend = env.get("NSL_RESULT_BACKEND_URL", "").strip() or None
    if result_backend is not None:
        _check_url("NSL_RESULT_BACKEND_URL", result_backend, redis_schemes)
    withdraw_min = _gas(env, "NSL_WITHDRAW_MIN", "0.1")
    withdraw_max = _gas(env, "NSL_WITHDRAW_MAX", "10000")
    withdraw_daily = _gas(env, "NSL_WITHDRAW_DAILY", "50000")
    if not withdraw_min <= withdraw_max <= withdraw_daily:
        raise ConfigError("NSL_WITHDRAW_MIN <= NSL_WITHDRAW_MAX <= NSL_WITHDRAW_DAILY must hold")
    sandbox_processes = _int(env, "NSL_SANDBOX_PROCESSES", 64, 1, 1024)
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        neo_rpc_urls=rpc_urls,
        secret_key=_key(env, "NSL_SECRET_KEY", 32) if _given(env, "NSL_SECRET_KEY") else None,
        secrets_keys=(
            _master_keys(env, "NSL_SECRETS_KEY") if _given(env, "NSL_SECRETS_KEY") else ()
        ),
        token_ttl_seconds=_int(env, "NSL_TOKEN_TTL_SECONDS", 3600, 60, 30 * 86400),
        login_limit_per_account=_int(env, "NSL_LOGIN_LIMIT_PER_ACCOUNT", 10, 1, 10_000),
        login_limit_per_address=_int(env, "NSL_LOGIN_LIMIT_PER_ADDRESS", 30, 1, 100_000),
        login_window_seconds=_int(env, "NSL_LOGIN_WINDOW_SECONDS", 300, 1, 86400),
        register_limit_per_address=_int(env, "NSL_REGISTER_LIMIT_PER_ADDRESS", 10, 1, 100_000),
        register_window_seconds=_int(env, "NSL_REGISTER_WINDOW_SECONDS", 3600, 1, 86400),
        service_name=_service_name(env),
        address_challenge_ttl_seconds=_int(
            env, "NSL_ADDRESS_CHALLENGE_TTL_SECONDS", 600, 30, 86400
        ),
        max_body_bytes=_int(env, "NSL_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
        proxy_hops=_int(env, "NSL_PROXY_HOPS", 0, 0, 10),
        db_pool_size=_int(env, "NSL_DB_POOL_SIZE", 5, 1, 100),
        db_outage_seconds=float(_int(env, "NSL_DB_OUTAGE_SECONDS", 30, 0, 3600)),
        db_dir=Path(db_dir_raw) if db_dir_raw else None,
        log_level=log_level,
        log_format=log_format,
        metrics_host=env.get("NSL_METRICS_HOST", "127.0.0.1").strip() or "127.0.0.1",
        metrics_port=_int(env, "NSL_METRICS_PORT", 0, 0, 65535),
        result_backend=result_backend,
        hot_wallet_wif=env.get("NSL_HOT_WALLET_WIF", "").strip() or None,
        deposit_address=_text(env, "NSL_DEPOSIT_ADDRESS"),
        gas_bank_enabled=_switch(env, "NSL_GAS_BANK", True),
        celery_events=_switch(env, "NSL_CELERY_EVENTS", True),
        withdraw_min=withdraw_min,
        withdraw_max=withdraw_max,
        withdraw_daily=withdraw_daily,
        withdraw_valid_blocks=_int(env, "NSL_WITHDRAW_VALID_BLOCKS", 100, 2, 5760),
        settle_margin_blocks=_int(env, "NSL_SETTLE_MARGIN_BLOCKS", 2, 0, 1000),
        follower_batch_blocks=_int(env, "NSL_FOLLOWER_BATCH_BLOCKS", 100, 1, 10_000),
        follower_interval=_int(env, "NSL_FOLLOWER_INTERVAL_MS", 1000, 100, 600_000) / 1000,
        sandbox_processes=sandbox_processes,
        sandbox_warm=min(
            _int(env, "NSL_SANDBOX_WARM", sandbox_processes, 0, 1024), sandbox_processes
        ),
        sandbox_user=env.get("NSL_SANDBOX_USER", "").strip() or "nobody",
        fetch_allow=_fetch_allow(env, "NSL_FETCH_ALLOW"),
        fetch_timeout_seconds=_int(env, "NSL_FETCH_TIMEOUT_MS", 10_000, 100, 300_000) / 1000,
        function_base_fee=_fee(env, "NSL_FUNCTION_BASE_FEE"),
        function_fee_per_100ms=_fee(env, "NSL_FUNCTION_FEE_PER_100MS"),
        execution_retention_days=_int(env, "NSL_EXECUTION_RETENTION_DAYS", 30, 1, 3650),
        execution_requeue_seconds=_int(env, "NSL_EXECUTION_REQUEUE_SECONDS", 60, 5, 3600),
        execution_reap_grace_seconds=_int(env, "NSL_EXECUTION_REAP_GRACE_SECONDS", 30, 1, 3600),
        relay_key=_named_key(env, "NSL_RELAY_KEY"),
        relay_public_key=_named_key(env, "NSL_RELAY_PUBLIC_KEY"),
        neo_calls_per_execution=_int(env, "NSL_NEO_CALLS_PER_EXECUTION", 10, 0, 100),
        neo_actions_per_execution=_int(env, "NSL_NEO_ACTIONS_PER_EXECUTION", 10, 0, 100),
        action_service_fee=_fee(env, "NSL_ACTION_SERVICE_FEE"),
        action_max_fee=_gas(env, "NSL_ACTION_MAX_FEE", "10"),
        action_valid_blocks=_int(env, "NSL_ACTION_VALID_BLOCKS", 100, 2, 5760),
        action_requeue_seconds=_int(env, "NSL_ACTION_REQUEUE_SECONDS", 30, 1, 3600),
        relay_batch=_int(env, "NSL_RELAY_BATCH", 50, 1, 500),
        cron_min_interval=_int(env, "NSL_CRON_MIN_INTERVAL_SECONDS", 10, 1, 86400),
        cron_batch=_int(env, "NSL_CRON_BATCH", 500, 1, 10_000),
        cron_poll_seconds=_int(env, "NSL_CRON_POLL_MS", 500, 10, 60_000) / 1000,
        webhook_rate_limit=_int(env, "NSL_WEBHOOK_RATE_LIMIT", 60, 1, 1_000_000),
        waiting_per_tenant=_int(env, "NSL_WAITING_PER_TENANT", 4, 0, 10_000),
        executions_per_tenant=_int(env, "NSL_EXECUTIONS_PER_TENANT", 8, 1, 100_000),
        triggers_per_tenant=_int(env, "NSL_TRIGGERS_PER_TENANT", 1000, 1, 1_000_000),
        price_check_seconds=_int(env, "NSL_PRICE_CHECK_MS", 5000, 100, 3_600_000) / 1000,
        price_source_urls=_price_source_urls(env),
        price_source_timeout_seconds=_int(env, "NSL_PRICE_SOURCE_TIMEOUT_MS", 3000, 100, 60_000)
        / 1000,
        price_listing_refresh_seconds=_int(
            env, "NSL_PRICE_LISTING_REFRESH_SECONDS", 3600, 60, 7 * 86_400
        ),
        pricefeed_min_frequency=_int(env, "NSL_PRICEFEED_MIN_FREQUENCY_SECONDS", 10, 1, 86400),
        pricefeed_contract=_contract_hash(env, "NSL_PRICEFEED_CONTRACT"),
        pricefeed_service_fee=_fee(env, "NSL_PRICEFEED_SERVICE_FEE"),
        pricefeed_round_fee=_fee(env, "NSL_PRICEFEED_ROUND_FEE"),
        pricefeed_source_fee=_fee(env, "NSL_PRICEFEED_SOURCE_FEE"),
        report_key=_named_key(env, "NSL_REPORT_KEY"),
        pricefeed_report_fee=_fee(env, "NSL_PRICEFEED_REPORT_FEE"),
        feeds_per_tenant=_int(env, "NSL_FEEDS_PER_TENANT", 50, 1, 1_000_000),
        actions_in_flight_per_tenant=_int(
            env, "NSL_ACTIONS_IN_FLIGHT_PER_TENANT", 100, 1, 1_000_000
        ),
        dev_starter_gas=starter,
        dev_faucet_address=faucet,
    )


def new_key() -> str:
    """A fresh random 32-byte key in the form ``NSL_SECRET_KEY``/``NSL_SECRETS_KEY`` expect."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
