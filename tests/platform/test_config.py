from __future__ import annotations

import base64

import pytest

from neosl.config import ConfigError, load_settings, new_key
from neosl.onchain import relaybox

KEY = new_key()


def env(**overrides: str) -> dict[str, str]:
    base = {
        "DATABASE_URL": "postgresql://u@db.example:5432/neosl",
        "REDIS_URL": "redis://cache.example:6379/0",
        "NEO_RPC_URL": "http://neo.example:10332",
        "NSL_SECRET_KEY": KEY,
        "NSL_SECRETS_KEY": KEY,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v != "<unset>"}


def test_valid_environment_loads_with_defaults() -> None:
    s = load_settings(env())
    assert s.database_url == "postgresql+psycopg://u@db.example:5432/neosl"
    assert s.neo_rpc_urls == ("http://neo.example:10332",)
    assert s.token_ttl_seconds == 3600
    assert len(s.require_secret_key()) == 32
    assert "secret_key" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "<unset>", "DATABASE_URL is not set"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL"),
        ("REDIS_URL", "", "REDIS_URL is not set"),
        ("NEO_RPC_URL", "<unset>", "NEO_RPC_URL is not set"),
        ("NEO_RPC_URL", "ftp://x", "NEO_RPC_URLS must be a URL"),
        ("NSL_SECRET_KEY", "c2hvcnQ", "NSL_SECRET_KEY must decode to at least 32 bytes"),
        ("NSL_SECRETS_KEY", "!!!", "NSL_SECRETS_KEY must be base64"),
        ("NSL_TOKEN_TTL_SECONDS", "ten", "NSL_TOKEN_TTL_SECONDS must be a whole number"),
        ("NSL_TOKEN_TTL_SECONDS", "5", "NSL_TOKEN_TTL_SECONDS must be between 60"),
        ("NSL_LOG_LEVEL", "LOUD", "NSL_LOG_LEVEL must be"),
        ("NSL_DEV_STARTER_GAS", "10", "NSL_DEV_STARTER_GAS needs NSL_DEV_FAUCET_ADDRESS"),
        ("NSL_DEV_STARTER_GAS", "-1", "NSL_DEV_STARTER_GAS must be zero or a positive"),
        ("NSL_DEV_FAUCET_ADDRESS", "Nnope", "NSL_DEV_FAUCET_ADDRESS is not a Neo N3 address"),
    ],
)
def test_bad_variable_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env(**{name: value}))


def test_secrets_key_must_be_exactly_32_bytes() -> None:
    long_key = base64.urlsafe_b64encode(b"x" * 48).decode()
    with pytest.raises(ConfigError, match="NSL_SECRETS_KEY must decode to exactly 32 bytes"):
        load_settings(env(NSL_SECRETS_KEY=long_key))


def test_several_rpc_urls_take_precedence() -> None:
    s = load_settings(env(NEO_RPC_URLS="http://a:1, http://b:2"))
    assert s.neo_rpc_urls == ("http://a:1", "http://b:2")
    assert s.neo_rpc_url == "http://a:1"


def test_new_key_is_random_and_valid() -> None:
    assert new_key() != new_key()
    assert len(base64.urlsafe_b64decode(new_key() + "=")) == 32


def test_describe_hides_keys_and_url_passwords() -> None:
    s = load_settings(
        env(
            DATABASE_URL="postgresql://u:hunter2@db/x",
            REDIS_URL="redis://:pw@r:6379/0",
            NSL_HOT_WALLET_WIF="KxDgvEKzgSBPPfuVfw67oPQBSjidEiqTHURKSDL1R7yGaGYAeYnr",
        )
    )
    described = s.describe()
    text = repr(described)
    assert "hunter2" not in text
    assert ":pw@" not in text
    assert KEY not in text
    assert described["secret_key"] == "<hidden>"
    assert described["hot_wallet_wif"] == "<hidden>"
    assert "KxDgv" not in text
    assert described["database_url"] == "postgresql+psycopg://u:***@db/x"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"NSL_WITHDRAW_MIN": "abc"}, "NSL_WITHDRAW_MIN must be a GAS amount"),
        ({"NSL_WITHDRAW_MAX": "-1"}, "NSL_WITHDRAW_MAX must be a positive GAS amount"),
        ({"NSL_WITHDRAW_DAILY": "1.000000001"}, "at most 8 decimals"),
        (
            {"NSL_WITHDRAW_MIN": "5", "NSL_WITHDRAW_MAX": "1"},
            "NSL_WITHDRAW_MIN <= NSL_WITHDRAW_MAX",
        ),
    ],
)
def test_withdrawal_limits_are_validated(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env(**overrides))


def test_relay_keys_pair_up_and_the_private_one_stays_hidden() -> None:
    private, public = relaybox.new_relay_key()
    both = load_settings(env(NSL_RELAY_KEY=f"r1:{private}", NSL_RELAY_PUBLIC_KEY=f"r1:{public}"))
    key = relaybox.relay_key(both)
    assert key is not None
    assert relaybox.relay_public_key(both) == key.public
    assert key.public.id == "r1"
    assert private not in str(both.describe())
    # The public half alone (the API), or the private one alone (its half is derived).
    only_public = load_settings(env(NSL_RELAY_PUBLIC_KEY=f"r1:{public}"))
    assert relaybox.relay_key(only_public) is None
    assert relaybox.relay_public_key(only_public) == key.public
    derived = relaybox.relay_public_key(load_settings(env(NSL_RELAY_KEY=private)))
    assert derived == relaybox.RelayPublicKey("default", key.public.key)
    _other, other_public = relaybox.new_relay_key()
    mismatched = load_settings(
        env(NSL_RELAY_KEY=f"r1:{private}", NSL_RELAY_PUBLIC_KEY=f"r1:{other_public}")
    )
    for read in (relaybox.relay_key, relaybox.relay_public_key):
        with pytest.raises(ConfigError, match="not the public half of NSL_RELAY_KEY"):
            read(mismatched)
    with pytest.raises(ConfigError, match="NSL_RELAY_KEY must decode to exactly 32 bytes"):
        load_settings(env(NSL_RELAY_KEY="abcd"))


def test_a_sealed_signer_key_opens_only_with_the_relay_key_and_its_row() -> None:
    private, _public = relaybox.new_relay_key()
    settings = load_settings(env(NSL_RELAY_KEY=private))
    key = relaybox.relay_key(settings)
    assert key is not None
    sealed = relaybox.seal(key.public, b"k" * 32, 7, "Naddress")
    assert relaybox.open_sealed(key, sealed, 7, "Naddress") == b"k" * 32
    for user_id, address in [(8, "Naddress"), (7, "Nother")]:
        with pytest.raises(relaybox.SignerKeyUnreadable):
            relaybox.open_sealed(key, sealed, user_id, address)
    stranger = relaybox.relay_key(load_settings(env(NSL_RELAY_KEY=relaybox.new_relay_key()[0])))
    assert stranger is not None
    with pytest.raises(relaybox.SignerKeyUnreadable):
        relaybox.open_sealed(stranger, sealed, 7, "Naddress")
    with pytest.raises(relaybox.SignerKeyUnreadable):
        relaybox.open_sealed(key, "not base64!", 7, "Naddress")


def test_each_price_source_url_is_configurable() -> None:
    s = load_settings(env(NSL_PRICE_SOURCE_BINANCE_URL="http://127.0.0.1:9001/"))
    assert s.price_source_url("binance") == "http://127.0.0.1:9001"
    assert s.price_source_url("kraken") == "https://api.kraken.com"
    assert "binance=http://127.0.0.1:9001" in s.describe()["price_source_urls"]
    with pytest.raises(ConfigError, match="NSL_PRICE_SOURCE_OKX_URL"):
        load_settings(env(NSL_PRICE_SOURCE_OKX_URL="ftp://x"))
    with pytest.raises(KeyError):
        s.price_source_url("nowhere")


def test_the_pricefeed_contract_is_a_hash() -> None:
    assert load_settings(env()).pricefeed_contract is None
    upper = "0x" + "AB" * 20
    assert load_settings(env(NSL_PRICEFEED_CONTRACT=upper)).pricefeed_contract == upper.lower()
    with pytest.raises(ConfigError, match="NSL_PRICEFEED_CONTRACT"):
        load_settings(env(NSL_PRICEFEED_CONTRACT="0x12"))


@pytest.mark.parametrize("name", ["NSL_SECRET_KEY", "NSL_SECRETS_KEY"])
def test_keys_are_required_only_where_they_are_used(name: str) -> None:
    """A worker that never signs tokens or reads tenant secrets runs without those keys;
    the processes that do ask for them at start."""
    s = load_settings(env(**{name: "<unset>"}))
    require = s.require_secret_key if name == "NSL_SECRET_KEY" else s.require_secrets_keys
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        require()
    blank = load_settings(env(**{name: "  "}))
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        (blank.require_secret_key if name == "NSL_SECRET_KEY" else blank.require_secrets_keys)()
