"""`neosl secrets rotate-master-key`, run as an operator would: a process with its environment."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from neosl.config import Settings, load_settings, new_key
from neosl.functions.secretbox import SecretUnreadable, granted_secrets
from neosl.models import Secret
from tests.clirun import run_cli
from tests.functions.test_secrets_api import Tenant, put
from tests.gas.test_races import racing_app

NEW, OLD, LOST = new_key(), new_key(), new_key()
ROTATING = f"new:{NEW},old:{OLD}"


@dataclasses.dataclass
class Deployment:
    """The API on the real engine, its settings changeable between requests."""

    settings: Settings
    engine: Engine
    redis: Redis
    server_env: dict[str, str]

    def with_keys(self, secrets_key: str) -> Settings:
        return load_settings({**self.server_env, "NSL_SECRETS_KEY": secrets_key})

    def client(self, secrets_key: str) -> FlaskClient:
        settings = self.with_keys(secrets_key)
        return racing_app(settings, self.engine, self.redis).test_client()

    def rows(self) -> dict[tuple[int, str], Secret]:
        with Session(self.engine) as session:
            return {(r.user_id, r.name): r for r in session.scalars(select(Secret))}

    def read(self, secrets_key: str, user_id: int, names: list[str]) -> dict[str, str]:
        with Session(self.engine) as session:
            return granted_secrets(
                session, self.with_keys(secrets_key).secrets_keys, user_id, names
            )


@pytest.fixture
def deployment(
    settings: Settings, committed_db: Engine, redis_client: Redis, server_env: dict[str, str]
) -> Deployment:
    return Deployment(settings, committed_db, redis_client, server_env)


def rotate(deployment: Deployment, secrets_key: str, *args: str) -> tuple[int, str, str]:
    result = run_cli(
        {**deployment.server_env, "NSL_SECRETS_KEY": secrets_key},
        "secrets",
        "rotate-master-key",
        *args,
    )
    for key in (NEW, OLD, LOST):
        assert key not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def stored_under_old(deployment: Deployment) -> tuple[Tenant, Tenant, dict[str, str]]:
    """Two tenants' secrets, all written while ``old`` was the only master key."""
    client = deployment.client(f"old:{OLD}")
    alice, bob = Tenant(client, "alice"), Tenant(client, "bob")
    values = {"API_KEY": "alice api key", "DB_PASSWORD": "alice db ✓"}
    for name, value in values.items():
        assert put(client, alice, name, "first " + value).status_code == 201
        assert put(client, alice, name, value).status_code == 200
    assert put(client, bob, "API_KEY", "bob api key").status_code == 201
    assert {r.master_key_id for r in deployment.rows().values()} == {"old"}
    return alice, bob, values


def test_rotation_rewraps_every_row_once(deployment: Deployment) -> None:
    alice, bob, values = stored_under_old(deployment)
    before = deployment.rows()

    code, out, err = rotate(deployment, ROTATING, "--batch-size", "2")
    assert (code, err) == (0, "")
    assert out == "re-wrapped 3 secret(s) under master key 'new'; 0 remain under other master keys"
    after = deployment.rows()
    assert set(after) == set(before)
    for key, row in after.items():
        assert row.master_key_id == "new"
        assert row.wrapped_key != before[key].wrapped_key
        # Only the data key moved: the value's ciphertext and the version are as they were.
        assert row.value == before[key].value
        assert row.version == before[key].version == (1 if key[0] == bob.id else 2)

    code, out, err = rotate(deployment, ROTATING)
    assert (code, err) == (0, "")
    assert out == "re-wrapped 0 secret(s) under master key 'new'; 0 remain under other master keys"
    assert {k: r.wrapped_key for k, r in deployment.rows().items()} == {
        k: r.wrapped_key for k, r in after.items()
    }

    # The old key can go: everything decrypts with the new one alone.
    assert deployment.read(f"new:{NEW}", alice.id, list(values)) == values
    assert deployment.read(f"new:{NEW}", bob.id, ["API_KEY"]) == {"API_KEY": "bob api key"}
    with pytest.raises(SecretUnreadable):
        deployment.read(f"old:{OLD}", alice.id, ["API_KEY"])


def test_writes_after_the_switch_use_the_new_key(deployment: Deployment) -> None:
    alice, _bob, _values = stored_under_old(deployment)
    client = deployment.client(ROTATING)
    assert put(client, alice, "API_KEY", "written after the switch").status_code == 200
    assert put(client, alice, "FRESH", "fresh").status_code == 201
    rows = deployment.rows()
    assert rows[(alice.id, "API_KEY")].master_key_id == "new"
    assert rows[(alice.id, "FRESH")].master_key_id == "new"
    code, out, _err = rotate(deployment, ROTATING)
    assert code == 0
    assert out.startswith("re-wrapped 2 secret(s)")


def test_a_row_under_an_unconfigured_key_is_left_and_reported(deployment: Deployment) -> None:
    alice, bob, values = stored_under_old(deployment)
    lost_client = deployment.client(f"lost:{LOST}")
    assert put(lost_client, alice, "LOST_ONE", "only the lost key opens this").status_code == 201
    lost_before = deployment.rows()[(alice.id, "LOST_ONE")]

    code, out, err = rotate(deployment, ROTATING)
    assert code == 1
    assert out == "re-wrapped 3 secret(s) under master key 'new'; 1 remain under other master keys"
    assert err == (
        "error: 1 secret(s) are wrapped by master key 'lost', which NSL_SECRETS_KEY does not "
        "configure; they were left as they are. Add that key to NSL_SECRETS_KEY (after the "
        "first one) and run this again."
    )
    rows = deployment.rows()
    lost_after = rows.pop((alice.id, "LOST_ONE"))
    assert (lost_after.master_key_id, lost_after.wrapped_key, lost_after.value) == (
        "lost",
        lost_before.wrapped_key,
        lost_before.value,
    )
    assert {r.master_key_id for r in rows.values()} == {"new"}
    assert deployment.read(f"new:{NEW}", alice.id, list(values)) == values
    assert deployment.read(f"new:{NEW}", bob.id, ["API_KEY"]) == {"API_KEY": "bob api key"}

    # Once the operator configures the missing key, the rotation finishes.
    code, out, err = rotate(deployment, f"{ROTATING},lost:{LOST}")
    assert (code, err) == (0, "")
    assert out == "re-wrapped 1 secret(s) under master key 'new'; 0 remain under other master keys"
    assert deployment.read(f"new:{NEW}", alice.id, ["LOST_ONE"]) == {
        "LOST_ONE": "only the lost key opens this"
    }


def test_a_row_that_fails_authentication_is_left_and_reported(deployment: Deployment) -> None:
    alice, bob, _values = stored_under_old(deployment)
    rows = deployment.rows()
    # Bob's wrapped key pasted into Alice's row: it is bound to Bob, so it does not unwrap.
    with Session(deployment.engine) as session:
        session.execute(
            update(Secret)
            .where(Secret.user_id == alice.id, Secret.name == "API_KEY")
            .values(wrapped_key=rows[(bob.id, "API_KEY")].wrapped_key)
        )
        session.commit()
    tampered_id = rows[(alice.id, "API_KEY")].id

    code, out, err = rotate(deployment, ROTATING)
    assert code == 1
    assert out == "re-wrapped 2 secret(s) under master key 'new'; 1 remain under other master keys"
    assert err.startswith(f"error: left secret row {tampered_id} as it is: secret 'API_KEY' of ")
    assert "fails authentication under master key 'old'" in err
    assert "alice api key" not in err
    assert deployment.rows()[(alice.id, "API_KEY")].master_key_id == "old"


def test_nothing_to_do_with_one_key(deployment: Deployment) -> None:
    code, out, err = rotate(deployment, f"only:{NEW}")
    assert (code, err) == (0, "")
    assert out == "re-wrapped 0 secret(s) under master key 'only'; 0 remain under other master keys"


def test_batch_size_must_be_positive(deployment: Deployment) -> None:
    code, _out, err = rotate(deployment, ROTATING, "--batch-size", "0")
    assert (code, err) == (2, "error: --batch-size must be at least 1")


def test_config_never_shows_master_keys(server_env: dict[str, str]) -> None:
    result = run_cli({**server_env, "NSL_SECRETS_KEY": f"{ROTATING},lost:{LOST}"}, "config")
    assert result.returncode == 0, result.stderr
    assert "secrets_keys = <hidden>" in result.stdout
    for key in (NEW, OLD, LOST):
        assert key not in result.stdout
        assert key.rstrip("=") not in result.stdout
